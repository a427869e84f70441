// vellum's Node-API addon. Exports:
//   gemm(transA, transB, M, N, K, A, lda, B, ldb, C, ldc, accumulate, threads): see gemm.h.
//     A, B, C are Float32Arrays (subarray views work: a view's start is the matrix's first element).
//     Runs synchronously; checks that every matrix fits in its array before touching memory.
#include <napi.h>

#include <string>

#include "backend/binding.h"
#include "gemm.h"

namespace {

// Elements a rows×cols matrix with leading dimension ld spans.
double span(int rows, int cols, int ld) { return rows == 0 || cols == 0 ? 0 : (rows - 1.0) * ld + cols; }

bool checkMatrix(Napi::Env env, const char* name, const Napi::Float32Array& arr, int rows, int cols, int ld) {
  if (ld < cols) {
    Napi::RangeError::New(env, std::string("gemm: ") + name + " leading dimension is smaller than its row")
        .ThrowAsJavaScriptException();
    return false;
  }
  if (span(rows, cols, ld) > static_cast<double>(arr.ElementLength())) {
    Napi::RangeError::New(env, std::string("gemm: ") + name + " does not fit in its array")
        .ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 13 || !info[5].IsTypedArray() || !info[7].IsTypedArray() || !info[9].IsTypedArray()) {
    Napi::TypeError::New(env, "gemm(transA, transB, M, N, K, A, lda, B, ldb, C, ldc, accumulate, threads)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto f32 = [&](int i) { return info[i].As<Napi::TypedArray>().TypedArrayType() == napi_float32_array; };
  if (!f32(5) || !f32(7) || !f32(9)) {
    Napi::TypeError::New(env, "gemm: A, B and C must be Float32Arrays").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto integer = [&](int i) { return info[i].As<Napi::Number>().Int32Value(); };
  vellum::GemmArgs g{};
  g.transA = info[0].ToBoolean();
  g.transB = info[1].ToBoolean();
  g.M = integer(2);
  g.N = integer(3);
  g.K = integer(4);
  auto a = info[5].As<Napi::Float32Array>();
  g.lda = integer(6);
  auto b = info[7].As<Napi::Float32Array>();
  g.ldb = integer(8);
  auto c = info[9].As<Napi::Float32Array>();
  g.ldc = integer(10);
  g.accumulate = info[11].ToBoolean();
  const int threads = integer(12);
  if (g.M < 0 || g.N < 0 || g.K < 0 || threads < 1) {
    Napi::RangeError::New(env, "gemm: sizes must be ≥ 0 and threads ≥ 1").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!checkMatrix(env, "A", a, g.transA ? g.K : g.M, g.transA ? g.M : g.K, g.lda) ||
      !checkMatrix(env, "B", b, g.transB ? g.N : g.K, g.transB ? g.K : g.N, g.ldb) ||
      !checkMatrix(env, "C", c, g.M, g.N, g.ldc))
    return env.Undefined();
  g.A = a.Data();
  g.B = b.Data();
  g.C = c.Data();
  vellum::gemm(g, threads);
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New(env, Gemm, "gemm"));
  vellum::backend::RegisterBackend(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(vellum_native, Init)
