#include "native-model.h"

#include <exception>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "cpu-features.h"
#include "napi-args.h"
#include "sampling-napi.h"

namespace vellum::backend {
namespace {

// A weight spec { dtype, rows, cols, data | file, offset } → a Weight pointing into its buffer or a mapped file,
// checked against the shape the config requires so no kernel can read past it.
bool readWeight(Napi::Value v, const std::string& name, const MappedFiles& files, int rows, int cols, Weight* out) {
  Napi::Env env = v.Env();
  if (!v.IsObject()) return throwType(env, name + " must be a tensor spec object");
  auto o = v.As<Napi::Object>();
  if (!readDType(o.Get("dtype"), name + ".dtype", &out->dtype)) return false;
  if (!readInt(o.Get("rows"), name + ".rows", 1, &out->rows) || !readInt(o.Get("cols"), name + ".cols", 1, &out->cols))
    return false;
  if (out->rows != rows || out->cols != cols)
    return throwRange(env, name + " has shape [" + std::to_string(out->rows) + ", " + std::to_string(out->cols) +
                               "], expected [" + std::to_string(rows) + ", " + std::to_string(cols) + "]");
  if (cols % blockValues(out->dtype) != 0)
    return throwRange(env, name + ": row length " + std::to_string(cols) + " is not a multiple of " +
                               std::to_string(blockValues(out->dtype)));
  const size_t bytes = rowBytes(out->dtype, cols) * rows;
  if (o.Has("data")) {
    uint8_t* data;
    size_t length;
    if (!readBytes(o.Get("data"), name + ".data", &data, &length)) return false;
    if (length < bytes) return throwRange(env, name + ".data holds " + std::to_string(length) + " bytes, needs " +
                                                   std::to_string(bytes));
    out->data = data;
    return true;
  }
  int index;
  double offset;
  if (!readInt(o.Get("file"), name + ".file", 0, &index) || !readDouble(o.Get("offset"), name + ".offset", &offset))
    return false;
  if (static_cast<size_t>(index) >= files.size())
    return throwRange(env, name + ".file is " + std::to_string(index) + " but the spec maps " +
                               std::to_string(files.size()) + " files");
  const MappedFile& file = *files[index];
  if (offset < 0 || offset + static_cast<double>(bytes) > static_cast<double>(file.size()))
    return throwRange(env, name + ": bytes " + std::to_string(offset) + "+" + std::to_string(bytes) +
                               " lie outside file " + std::to_string(index));
  out->data = file.data() + static_cast<size_t>(offset);
  return true;
}

// A 1-D tensor (norm weight, bias) as f32, copied: it is small and read by every token.
bool readVector(Napi::Value v, const std::string& name, const MappedFiles& files, int length, std::vector<float>* out) {
  Weight w;
  if (!readWeight(v, name, files, 1, length, &w)) return false;
  out->resize(length);
  dequantizeRow(w, 0, out->data());
  return true;
}

// Every ModelConfig field from config.<name> (forEachConfigField), stopping at the first bad one.
bool readConfig(Napi::Value v, ModelConfig* c) {
  if (!v.IsObject()) return throwType(v.Env(), "config must be an object");
  auto o = v.As<Napi::Object>();
  bool ok = true;
  forEachConfigField(c, [&](const char* name, auto* field, int min = 1) {
    using T = std::remove_pointer_t<decltype(field)>;
    if (!ok) return;
    const std::string path = std::string("config.") + name;
    if constexpr (std::is_same_v<T, int>) {
      ok = readInt(o.Get(name), path, min, field);
    } else if constexpr (std::is_same_v<T, std::vector<int32_t>>) {
      ok = readIntList(o.Get(name), path, min, field);
    } else if constexpr (std::is_same_v<T, bool>) {
      *field = o.Get(name).ToBoolean();
    } else {
      double d = 0;
      ok = readDouble(o.Get(name), path, &d);
      if (ok) *field = static_cast<T>(d);
    }
  });
  if (!ok) return false;
  if (c->nHeads % c->nKvHeads != 0) return throwRange(v.Env(), "config.nHeads must be a multiple of nKvHeads");
  if (c->ropeDims % 2 != 0 || c->ropeDims > c->headDim)
    return throwRange(v.Env(), "config.ropeDims must be even and at most headDim");
  if (c->layerWindows.size() != static_cast<size_t>(c->nLayers))
    return throwRange(v.Env(), "config.layerWindows must have config.nLayers entries");
  return true;
}

bool readLayer(Napi::Value v, int l, const MappedFiles& files, const ModelConfig& c, LayerWeights* w) {
  const std::string p = "weights.layers[" + std::to_string(l) + "].";
  if (!v.IsObject()) return throwType(v.Env(), p + " must be an object");
  auto o = v.As<Napi::Object>();
  const int qDim = c.nHeads * c.headDim;
  const int kvDim = c.nKvHeads * c.headDim;
  if (!readVector(o.Get("attnNorm"), p + "attnNorm", files, c.dim, &w->attnNorm) ||
      !readVector(o.Get("ffnNorm"), p + "ffnNorm", files, c.dim, &w->ffnNorm) ||
      !readWeight(o.Get("wq"), p + "wq", files, qDim, c.dim, &w->wq) ||
      !readWeight(o.Get("wk"), p + "wk", files, kvDim, c.dim, &w->wk) ||
      !readWeight(o.Get("wv"), p + "wv", files, kvDim, c.dim, &w->wv) ||
      !readWeight(o.Get("wo"), p + "wo", files, c.dim, qDim, &w->wo) ||
      !readWeight(o.Get("gate"), p + "gate", files, c.hiddenDim, c.dim, &w->gate) ||
      !readWeight(o.Get("up"), p + "up", files, c.hiddenDim, c.dim, &w->up) ||
      !readWeight(o.Get("down"), p + "down", files, c.dim, c.hiddenDim, &w->down))
    return false;
  if (o.Has("bq") && !readVector(o.Get("bq"), p + "bq", files, qDim, &w->bq)) return false;
  if (o.Has("bk") && !readVector(o.Get("bk"), p + "bk", files, kvDim, &w->bk)) return false;
  if (o.Has("bv") && !readVector(o.Get("bv"), p + "bv", files, kvDim, &w->bv)) return false;
  if (c.qkNorm && (!readVector(o.Get("qNorm"), p + "qNorm", files, c.headDim, &w->qNorm) ||
                   !readVector(o.Get("kNorm"), p + "kNorm", files, c.headDim, &w->kNorm)))
    return false;
  if (c.postNorms && (!readVector(o.Get("postAttnNorm"), p + "postAttnNorm", files, c.dim, &w->postAttnNorm) ||
                      !readVector(o.Get("postFfnNorm"), p + "postFfnNorm", files, c.dim, &w->postFfnNorm)))
    return false;
  return true;
}

}  // namespace

// A model's work on a libuv worker thread (plus the pool's threads), so the JS thread stays free: one at a time
// (NativeModel::busy_), the model kept alive until it is done, a promise settled with result().
class ModelWorker : public Napi::AsyncWorker {
 public:
  ModelWorker(Napi::Env env, const char* name, NativeModel* owner)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), owner_(owner) {
    self_ = Napi::Persistent(owner->Value());
  }
  Napi::Promise Promise() const { return deferred_.Promise(); }

  void OnOK() override {
    owner_->busy_ = false;
    deferred_.Resolve(result());
  }
  void OnError(const Napi::Error& e) override {
    owner_->busy_ = false;
    deferred_.Reject(e.Value());
  }

 protected:
  virtual Napi::Value result() = 0;
  NativeModel* owner_;

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference self_;
};

// One forward pass.
class ForwardWorker : public ModelWorker {
 public:
  ForwardWorker(Napi::Env env, NativeModel* owner, Batch batch, Napi::Float32Array out)
      : ModelWorker(env, "vellum.forward", owner), batch_(std::move(batch)), logits_(out.Data()) {
    out_ = Napi::Persistent(out);
  }

  void Execute() override {
    try {
      owner_->model_->forward(batch_, logits_);
    } catch (const std::exception& e) {  // growing scratch can run out of memory
      SetError(std::string("forward: ") + e.what());
    }
  }

 private:
  Napi::Value result() override { return out_.Value(); }
  Napi::Reference<Napi::Float32Array> out_;
  Batch batch_;
  float* logits_;
};

// Samples a batch of rows (sampling.h) on the model's pool.
class SampleWorker : public ModelWorker {
 public:
  SampleWorker(Napi::Env env, NativeModel* owner, SampleBatch batch, Napi::Array rows, Napi::Array raw)
      : ModelWorker(env, "vellum.sample", owner), batch_(std::move(batch)) {
    rows_ = Napi::Persistent(rows);
    raw_ = Napi::Persistent(raw);
  }

  void Execute() override {
    try {
      Model& m = *owner_->model_;
      owner_->sampler_.run(samplingKernelsFor(m.kernels()), m.pool(), batch_, &result_);
    } catch (const std::exception& e) {  // growing scratch can run out of memory
      SetError(std::string("sample: ") + e.what());
    }
  }

 private:
  Napi::Value result() override { return sampleResultToJs(Env(), result_); }
  Napi::Reference<Napi::Array> rows_;  // keep the rows' buffers alive while the pool reads them
  Napi::Reference<Napi::Array> raw_;
  SampleBatch batch_;
  SampleResult result_;
};

// prepare(): the weights' interleaved copies made on a libuv worker thread (plus the pool's), progress sent to the
// JS callback as it goes; the promise settles after the last progress call.
class PrepareWorker : public Napi::AsyncProgressQueueWorker<std::pair<size_t, size_t>> {
 public:
  PrepareWorker(Napi::Env env, NativeModel* owner, Napi::Value onProgress)
      : Napi::AsyncProgressQueueWorker<std::pair<size_t, size_t>>(env, "vellum.prepare"),
        deferred_(Napi::Promise::Deferred::New(env)),
        owner_(owner) {
    self_ = Napi::Persistent(owner->Value());
    if (onProgress.IsFunction()) onProgress_ = Napi::Persistent(onProgress.As<Napi::Function>());
  }
  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute(const ExecutionProgress& progress) override {
    try {
      owner_->model_->interleaveWeights([&](size_t done, size_t total) {
        const std::pair<size_t, size_t> p{done, total};
        progress.Send(&p, 1);
      });
    } catch (const std::exception& e) {  // the interleaved copies of the weights can exceed memory
      SetError(std::string("cannot lay out the weights for the kernels: ") + e.what());
      return;
    }
    // The kernels read these matrices from their copies: the process need not hold the mapped pages too.
    for (const auto& file : owner_->files_)
      for (const Weight* m : owner_->model_->matrices())
        if (m->interleaved) file->release(m->data, rowBytes(m->dtype, m->cols) * m->rows);
  }

  void OnProgress(const std::pair<size_t, size_t>* data, size_t count) override {
    if (onProgress_.IsEmpty() || !callbackError_.IsEmpty()) return;
    Napi::Env env = Env();
    for (size_t i = 0; i < count; i++) {
      onProgress_.Call({Napi::Number::New(env, static_cast<double>(data[i].first)),
                        Napi::Number::New(env, static_cast<double>(data[i].second))});
      if (env.IsExceptionPending()) {  // the promise rejects with it once the work is done
        callbackError_ = Napi::Persistent(env.GetAndClearPendingException().Value());
        return;
      }
    }
  }

  void OnOK() override {
    owner_->busy_ = false;
    owner_->prepared_ = true;
    if (callbackError_.IsEmpty())
      deferred_.Resolve(Env().Undefined());
    else
      deferred_.Reject(callbackError_.Value());
  }
  void OnError(const Napi::Error& e) override {
    owner_->busy_ = false;
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  NativeModel* owner_;
  Napi::ObjectReference self_;
  Napi::FunctionReference onProgress_;
  Napi::ObjectReference callbackError_;
};

Napi::Function NativeModel::Define(Napi::Env env) {
  auto configFields = Napi::Array::New(env);
  ModelConfig names{};
  forEachConfigField(&names, [&](const char* name, auto*, int = 1) {
    configFields.Set(configFields.Length(), Napi::String::New(env, name));
  });
  return DefineClass(env, "NativeModel",
                     {InstanceMethod<&NativeModel::Prepare>("prepare"),
                      InstanceMethod<&NativeModel::InitKvCache>("initKvCache"),
                      InstanceMethod<&NativeModel::Forward>("forward"),
                      InstanceMethod<&NativeModel::Sample>("sample"),
                      InstanceAccessor<&NativeModel::KernelPath>("kernelPath"),
                      InstanceAccessor<&NativeModel::Threads>("threads"),
                      StaticValue("configFields", configFields),
                      InstanceAccessor<&NativeModel::MappedWeightBytes>("mappedWeightBytes"),
                      InstanceAccessor<&NativeModel::KvCacheResident>("kvCacheResident"),
                      InstanceAccessor<&NativeModel::LastForwardTimes>("lastForwardTimes")});
}

NativeModel::NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsObject()) {
    throwType(env, "new NativeModel(spec): spec must be an object");
    return;
  }
  auto spec = info[0].As<Napi::Object>();
  ModelConfig c;
  if (!readConfig(spec.Get("config"), &c)) return;
  int threads;
  std::string path;
  if (!readInt(spec.Get("threads"), "threads", 1, &threads) || !readString(spec.Get("kernels"), "kernels", &path))
    return;
  const Kernels* kernels = selectKernels(path);
  if (!kernels) {
    throwRange(env, "kernels \"" + path + "\" is unknown or this CPU cannot run it");
    return;
  }
  if (spec.Has("files") && !spec.Get("files").IsUndefined()) {
    if (!spec.Get("files").IsArray()) {
      throwType(env, "files must be an array of paths");
      return;
    }
    auto paths = spec.Get("files").As<Napi::Array>();
    for (uint32_t i = 0; i < paths.Length(); i++) {
      std::string path;
      if (!readString(paths.Get(i), "files[" + std::to_string(i) + "]", &path)) return;
      files_.push_back(std::make_unique<MappedFile>(path));
      if (!files_.back()->data()) {
        throwType(env, files_.back()->error());
        return;
      }
    }
  }
  if (!spec.Get("weights").IsObject()) {
    throwType(env, "weights must be an object");
    return;
  }
  auto ws = spec.Get("weights").As<Napi::Object>();
  ModelWeights w;
  if (!readWeight(ws.Get("embedding"), "weights.embedding", files_, c.vocabSize, c.dim, &w.embedding) ||
      !readVector(ws.Get("outputNorm"), "weights.outputNorm", files_, c.dim, &w.outputNorm) ||
      !readWeight(ws.Get("classifier"), "weights.classifier", files_, c.vocabSize, c.dim, &w.classifier))
    return;
  if (ws.Has("ropeFactors") &&
      !readVector(ws.Get("ropeFactors"), "weights.ropeFactors", files_, c.ropeDims / 2, &w.ropeFactors))
    return;
  if (!ws.Get("layers").IsArray() || ws.Get("layers").As<Napi::Array>().Length() != static_cast<uint32_t>(c.nLayers)) {
    throwType(env, "weights.layers must be an array of config.nLayers layers");
    return;
  }
  auto layers = ws.Get("layers").As<Napi::Array>();
  w.layers.resize(c.nLayers);
  for (int l = 0; l < c.nLayers; l++)
    if (!readLayer(layers.Get(l), l, files_, c, &w.layers[l])) return;
  spec_ = Napi::Persistent(spec);
  model_ = std::make_unique<Model>(c, std::move(w), *kernels, threads);
}

Napi::Value NativeModel::Prepare(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // Until prepared, only prepare() itself makes the model busy.
  if (prepared_ || busy_) {
    throwType(env, "prepare: the model is already prepared or being prepared");
    return env.Undefined();
  }
  if (info.Length() > 0 && !info[0].IsUndefined() && !info[0].IsFunction()) {
    throwType(env, "prepare(onProgress): onProgress must be a function");
    return env.Undefined();
  }
  busy_ = true;
  auto* worker = new PrepareWorker(env, this, info[0]);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

bool NativeModel::prepared(Napi::Env env, const char* what) const {
  if (prepared_) return true;
  return throwType(env, std::string(what) + ": the model is not prepared (await prepare() first)");
}

Napi::Value NativeModel::InitKvCache(const Napi::CallbackInfo& info) {
  int numBlocks, blockSize;
  KvDtype dtype;
  std::vector<int32_t> layers, starts;
  if (!prepared(info.Env(), "initKvCache")) return info.Env().Undefined();
  if (busy_) {
    throwType(info.Env(), "initKvCache called while a forward pass runs");
    return info.Env().Undefined();
  }
  if (!readInt(info[0], "numBlocks", 1, &numBlocks) || !readInt(info[1], "blockSize", 1, &blockSize) ||
      !readKvDtype(info[2], "dtype", &dtype) || !readTables(info[3], "groups", &layers, &starts))
    return info.Env().Undefined();
  std::vector<std::vector<int32_t>> groups;
  for (size_t g = 0; g + 1 < starts.size(); g++)
    groups.emplace_back(layers.begin() + starts[g], layers.begin() + starts[g + 1]);
  if (groups.empty()) {
    throwType(info.Env(), "initKvCache: groups must name at least one KV cache group");
    return info.Env().Undefined();
  }
  try {
    model_->initKvCache(numBlocks, blockSize, dtype, groups);
  } catch (const std::invalid_argument& e) {
    throwType(info.Env(), std::string("initKvCache: ") + e.what());
  } catch (const std::exception& e) {
    throwRange(info.Env(), "initKvCache: cannot allocate " + std::to_string(numBlocks) + " blocks: " + e.what());
  }
  return info.Env().Undefined();
}

Napi::Value NativeModel::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!prepared(env, "forward")) return env.Undefined();
  Batch b;
  if (!readI32(info[0], "tokenIds", &b.tokenIds) || !readI32(info[1], "positions", &b.positions) ||
      !readTables(info[2], "slotMappings", &b.slotMappings, &b.slotMappingStart) ||
      !readI32(info[3], "queryStartLoc", &b.queryStartLoc) ||
      !readI32(info[4], "seqLens", &b.seqLens) || !readTables(info[5], "blockTables", &b.tables, &b.tableStart) ||
      !readI32(info[6], "logitsIndices", &b.logitsIndices))
    return env.Undefined();
  const std::string problem = model_->validate(b);
  if (!problem.empty()) {
    throwRange(env, "forward: " + problem);
    return env.Undefined();
  }
  if (busy_) {
    throwType(env, "forward: the previous forward pass has not finished");
    return env.Undefined();
  }
  const size_t numLogits = b.logitsIndices.size() * static_cast<size_t>(model_->config().vocabSize);
  Napi::Float32Array out;
  if (info[7].IsUndefined()) {
    out = Napi::Float32Array::New(env, numLogits);
  } else {
    // The caller's buffer, kept across steps: no allocation, zeroing or fresh pages per step.
    float* data = nullptr;
    size_t length = 0;
    if (!readF32(info[7], "out", &data, &length)) return env.Undefined();
    if (length < numLogits) {
      throwRange(env, "forward: out holds " + std::to_string(length) + " floats, the logits need " +
                          std::to_string(numLogits));
      return env.Undefined();
    }
    auto given = info[7].As<Napi::Float32Array>();
    out = Napi::Float32Array::New(env, numLogits, given.ArrayBuffer(), given.ByteOffset());
  }
  busy_ = true;
  auto* worker = new ForwardWorker(env, this, std::move(b), out);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value NativeModel::Sample(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!prepared(env, "sample")) return env.Undefined();
  SampleBatch b;
  if (!readSampleBatch(info[0], info[1], info[2], model_->config().vocabSize, &b)) return env.Undefined();
  if (busy_) {
    throwType(env, "sample: a forward pass or sampling call has not finished");
    return env.Undefined();
  }
  busy_ = true;
  auto* worker = new SampleWorker(env, this, std::move(b), info[0].As<Napi::Array>(), info[1].As<Napi::Array>());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value NativeModel::KernelPath(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), model_->kernels().name);
}

Napi::Value NativeModel::Threads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), model_->threads());
}

Napi::Value NativeModel::MappedWeightBytes(const Napi::CallbackInfo& info) {
  if (!prepared(info.Env(), "mappedWeightBytes")) return info.Env().Undefined();
  size_t bytes = 0;
  for (const auto& file : files_) bytes += model_->bytesReadIn(file->data(), file->data() + file->size());
  return Napi::Number::New(info.Env(), static_cast<double>(bytes));
}

Napi::Value NativeModel::KvCacheResident(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), model_->kvCacheResident());
}

// { seconds, attentionSeconds, classifierSeconds } of the last forward pass (model.h ForwardTimes); zeros before
// the first. Read it after the pass's promise settles.
Napi::Value NativeModel::LastForwardTimes(const Napi::CallbackInfo& info) {
  const ForwardTimes& t = model_->lastForwardTimes();
  auto o = Napi::Object::New(info.Env());
  o.Set("seconds", t.seconds);
  o.Set("attentionSeconds", t.attentionSeconds);
  o.Set("classifierSeconds", t.classifierSeconds);
  return o;
}

}  // namespace vellum::backend
