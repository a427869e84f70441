// Reading and checking arguments from JS. Each reader throws a JS TypeError/RangeError naming the argument
// and returns false on bad input (the addon is built without C++ exceptions).
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kernels.h"

namespace vellum::backend {

inline bool throwType(Napi::Env env, const std::string& message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return false;
}

inline bool throwRange(Napi::Env env, const std::string& message) {
  Napi::RangeError::New(env, message).ThrowAsJavaScriptException();
  return false;
}

inline bool readInt(Napi::Value v, const std::string& name, int min, int* out) {
  if (!v.IsNumber()) return throwType(v.Env(), name + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int64_t>(d)) || d < min || d > 2147483647.0)
    return throwRange(v.Env(), name + " must be an integer ≥ " + std::to_string(min));
  *out = static_cast<int>(d);
  return true;
}

// A JS array of integers ≥ min.
inline bool readIntList(Napi::Value v, const std::string& name, int min, std::vector<int32_t>* out) {
  if (!v.IsArray()) return throwType(v.Env(), name + " must be an array of integers");
  auto arr = v.As<Napi::Array>();
  out->resize(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++)
    if (!readInt(arr.Get(i), name + "[" + std::to_string(i) + "]", min, &(*out)[i])) return false;
  return true;
}

inline bool readDouble(Napi::Value v, const std::string& name, double* out) {
  if (!v.IsNumber()) return throwType(v.Env(), name + " must be a number");
  *out = v.As<Napi::Number>().DoubleValue();
  return true;
}

inline bool readString(Napi::Value v, const std::string& name, std::string* out) {
  if (!v.IsString()) return throwType(v.Env(), name + " must be a string");
  *out = v.As<Napi::String>().Utf8Value();
  return true;
}

template <typename T, napi_typedarray_type kType>
bool readTyped(Napi::Value v, const std::string& name, const char* typeName, T** data, size_t* length) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != kType)
    return throwType(v.Env(), name + " must be a " + typeName);
  auto a = v.As<Napi::TypedArrayOf<T>>();
  *data = a.Data();
  *length = a.ElementLength();
  return true;
}

inline bool readF32(Napi::Value v, const std::string& name, float** data, size_t* length) {
  return readTyped<float, napi_float32_array>(v, name, "Float32Array", data, length);
}

inline bool readBytes(Napi::Value v, const std::string& name, uint8_t** data, size_t* length) {
  return readTyped<uint8_t, napi_uint8_array>(v, name, "Uint8Array", data, length);
}

inline bool readI32(Napi::Value v, const std::string& name, std::vector<int32_t>* out) {
  int32_t* data = nullptr;
  size_t length = 0;
  if (!readTyped<int32_t, napi_int32_array>(v, name, "Int32Array", &data, &length)) return false;
  out->assign(data, data + length);
  return true;
}

// Block tables (an array of Int32Arrays) stored back to back, with where each starts.
inline bool readTables(Napi::Value v, const std::string& name, std::vector<int32_t>* tables,
                       std::vector<int32_t>* starts) {
  if (!v.IsArray()) return throwType(v.Env(), name + " must be an array of Int32Arrays");
  auto arr = v.As<Napi::Array>();
  tables->clear();
  starts->assign(1, 0);
  std::vector<int32_t> one;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    if (!readI32(arr.Get(i), name + "[" + std::to_string(i) + "]", &one)) return false;
    tables->insert(tables->end(), one.begin(), one.end());
    starts->push_back(static_cast<int32_t>(tables->size()));
  }
  return true;
}

inline bool readDType(Napi::Value v, const std::string& name, DType* out) {
  std::string s;
  if (!readString(v, name, &s)) return false;
  static const char* names[] = {"f32",  "f16",  "bf16", "q8_0", "q4_0", "q4_k",   "q6_k",  "q4_1",
                                "q5_0", "q5_1", "q2_k", "q3_k", "q5_k", "iq4_nl", "iq4_xs"};
  for (int i = 0; i < static_cast<int>(sizeof names / sizeof names[0]); i++)
    if (s == names[i]) {
      *out = static_cast<DType>(i);
      return true;
    }
  return throwType(v.Env(), name + ": the native backend has no kernels for tensor type " + s);
}

inline bool readKvDtype(Napi::Value v, const std::string& name, KvDtype* out) {
  std::string s;
  if (!readString(v, name, &s)) return false;
  if (s == "f32" || s == "f16") {
    *out = s == "f16" ? KvDtype::F16 : KvDtype::F32;
    return true;
  }
  return throwRange(v.Env(), name + " must be \"f32\" or \"f16\", got \"" + s + "\"");
}

}  // namespace vellum::backend
