// pager_binding.h — reusable N-API glue for the pager core.
//
// Used by @persist/pager's own addon (binding.cc) and by every addon that compiles
// pager.cc in (e.g. @persist/heap), so all of them expose the same pager methods on
// their native handle and throw the same JS PersistError.
//
// Usage in an addon:
//
//   class MyHandle : public Napi::ObjectWrap<MyHandle>, public persist_napi::PagerHolder {
//     MyHandle(const Napi::CallbackInfo& info) : ObjectWrap(info) {
//       OpenFromArgs(info);            // info[0] = path, info[1] = options object
//       InstallFastMethods(info.Env(), info.This().As<Napi::Object>());  // hot path without napi_unwrap
//     }
//     static Napi::Function Define(Napi::Env env) {
//       auto props = persist_napi::PagerMethods<MyHandle>();
//       props.push_back(InstanceMethod("mine", &MyHandle::Mine));
//       return DefineClass(env, "MyHandle", props);
//     }
//   };
//   exports.Set("setErrorClass", Napi::Function::New(env, persist_napi::SetErrorClassFn));
//
// JS must call setErrorClass(PersistError) once before anything can fail (the
// @persist/pager loader does this for its addon; other addons do it in their own
// src/ after loading). Until then errors arrive as plain Error with a `code`.
//
// Views of the mapping (windows()) are external ArrayBuffers, made by v8_window.h
// (not counted as external memory by V8, so no GC at open) or, as a fallback, with
// napi_create_external_arraybuffer (see TOOLCHAIN.md: the node-addon-api wrapper
// double-frees when creation fails). PagerHolder keeps weak references to them and
// detaches them (napi_detach_arraybuffer) before unmapping at close, so a view kept
// past close() throws (DataView) or is empty (typed arrays) instead of faulting, and
// no address space stays reserved after close.
#pragma once

#include <napi.h>

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "pager.h"
#include "v8_window.h"

namespace persist_napi {

// ---- errors -----------------------------------------------------------------

inline std::unordered_map<napi_env, Napi::FunctionReference*>& ErrorClasses() {
  static std::unordered_map<napi_env, Napi::FunctionReference*> m;
  return m;
}

inline Napi::Value SetErrorClassFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) throw Napi::TypeError::New(env, "setErrorClass(PersistError): a class is required");
  auto& m = ErrorClasses();
  auto it = m.find(env);
  if (it == m.end()) {
    auto* ref = new Napi::FunctionReference(Napi::Persistent(info[0].As<Napi::Function>()));
    m[env] = ref;
    napi_env raw = env;
    env.AddCleanupHook([raw]() {
      auto& mm = ErrorClasses();
      auto i = mm.find(raw);
      if (i != mm.end()) {
        delete i->second;
        mm.erase(i);
      }
    });
  } else {
    it->second->Reset(info[0].As<Napi::Function>(), 1);
  }
  return env.Undefined();
}

// A JS PersistError(code, message) (or an Error with .code before setErrorClass).
inline Napi::Error MakePersistError(Napi::Env env, const persist::Error& e) {
  const char* code = persist::error_code_name(e.code);
  auto& m = ErrorClasses();
  auto it = m.find(env);
  if (it != m.end()) {
    Napi::Object obj = it->second->New({Napi::String::New(env, code), Napi::String::New(env, e.what())});
    return Napi::Error(env, obj);
  }
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("code", Napi::String::New(env, code));
  return err;
}

[[noreturn]] inline void ThrowPersistError(Napi::Env env, const persist::Error& e) { throw MakePersistError(env, e); }

// ---- arguments (the TS layer validates first; these only keep native code safe) --

inline double ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

inline uint64_t ArgU64(const Napi::CallbackInfo& info, size_t i, const char* what) {
  double d = ArgNumber(info, i, what);
  if (!(d >= 0) || d > 9007199254740991.0 || std::floor(d) != d)
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be an integer between 0 and 2^53-1");
  return uint64_t(d);
}

inline persist::OpenOptions ParseOpenOptions(Napi::Env env, Napi::Value v) {
  persist::OpenOptions o;
  if (v.IsUndefined() || v.IsNull()) return o;
  if (!v.IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  Napi::Object obj = v.As<Napi::Object>();
  auto flag = [&](const char* k, bool* out) {
    Napi::Value x = obj.Get(k);
    if (x.IsUndefined()) return;
    if (!x.IsBoolean()) throw Napi::TypeError::New(env, std::string("options.") + k + " must be a boolean");
    *out = x.As<Napi::Boolean>().Value();
  };
  auto num = [&](const char* k, double lo, double hi) -> double {
    Napi::Value x = obj.Get(k);
    if (x.IsUndefined()) return -1;
    if (!x.IsNumber()) throw Napi::TypeError::New(env, std::string("options.") + k + " must be a number");
    double d = x.As<Napi::Number>().DoubleValue();
    if (!(d >= lo && d <= hi) || std::floor(d) != d)
      throw Napi::RangeError::New(env, std::string("options.") + k + " is out of range");
    return d;
  };
  flag("create", &o.create);
  flag("readonly", &o.readonly);
  Napi::Value dur = obj.Get("durability");
  if (!dur.IsUndefined()) {
    std::string d = dur.IsString() ? dur.As<Napi::String>().Utf8Value() : "";
    if (d == "process") o.durability = persist::Durability::PROCESS;
    else if (d == "full") o.durability = persist::Durability::FULL;
    else throw Napi::TypeError::New(env, "options.durability must be 'process' or 'full'");
  }
  double d;
  if ((d = num("maxSize", 0, 9007199254740991.0)) >= 0) o.max_size = uint64_t(d);
  if ((d = num("lockTimeoutMs", 0, 4294967295.0)) >= 0) o.lock_timeout_ms = uint32_t(d);
  if ((d = num("mode", 0, 07777)) >= 0) o.mode = uint32_t(d);
  return o;
}

// ---- the handle ---------------------------------------------------------------

// Views are detached at close (napi_detach_arraybuffer), so no JS object can reach
// the mapping once it is unmapped: a stale DataView throws TypeError, a stale
// Uint8Array has length 0. Nothing to free when a view is collected.
inline void ViewFinalize(napi_env, void*, void*) {}

// Base of native handles that own a Pager. Derive from it next to Napi::ObjectWrap.
class PagerHolder {
 public:
  virtual ~PagerHolder() { ClosePager(); }

  persist::Pager& pager() {
    if (!pager_) throw persist::Error(persist::Code::CLOSED, "the store is closed; open it again to use it");
    return *pager_;
  }
  bool has_pager() const { return pager_ != nullptr; }

  // Opens from JS arguments (path string, options object). Throws a JS error.
  void OpenFromArgs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "path must be a string");
    std::string path = info[0].As<Napi::String>().Utf8Value();
    persist::OpenOptions o = ParseOpenOptions(env, info.Length() > 1 ? info[1] : env.Undefined());
    try {
      pager_ = persist::Pager::open(path, o);
    } catch (const persist::Error& e) {
      ThrowPersistError(env, e);
    }
    path_ = path;
  }

  // Called by close() before the pager closes: let a derived handle drop its state.
  virtual void BeforeClose() {}

  void ClosePager() {
    if (!pager_) return;
    DetachViews();
    pager_->close();
    pager_.reset();
  }

  // Detaches every window still alive (weak references), so that unmapping cannot
  // leave a JS view pointing at unmapped memory.
  void DetachViews() {
    for (napi_ref r : views_) {
      napi_value v = nullptr;
      if (env_ && napi_get_reference_value(env_, r, &v) == napi_ok && v != nullptr) {
        bool detached = true;
        if (napi_is_detached_arraybuffer(env_, v, &detached) == napi_ok && !detached)
          napi_detach_arraybuffer(env_, v);
      }
      if (env_) napi_delete_reference(env_, r);
    }
    views_.clear();
  }

  // Windows: window k starts at byte k*2^31 and is min(2^32, mapped - start) long.
  Napi::Value Windows(Napi::Env env) {
    persist::Pager& p = pager();
    env_ = env;
    PruneViews();
    uint64_t mapped = p.mapped_bytes();
    Napi::Array arr = Napi::Array::New(env);
    uint32_t k = 0;
    for (uint64_t start = 0; start < mapped; start += (uint64_t(1) << 31), ++k) {
      uint64_t len = std::min<uint64_t>(uint64_t(1) << 32, mapped - start);
      napi_value ab = V8Windows::Available(env) ? V8Windows::NewWindow(p.base() + start, size_t(len)) : nullptr;
      if (ab == nullptr) {  // Node-API fallback: V8 counts it as external memory (v8_window.h)
        napi_status st = napi_create_external_arraybuffer(env, p.base() + start, size_t(len), ViewFinalize, nullptr, &ab);
        if (st != napi_ok)  // Node has already run the (no-op) finalizer (TOOLCHAIN.md)
          throw Napi::Error::New(env, "cannot create a view of the store mapping (napi status " + std::to_string(st) + ")");
      }
      napi_ref r;
      if (napi_create_reference(env, ab, 0, &r) != napi_ok) throw Napi::Error::New(env, "cannot reference a view");
      views_.push_back(r);
      arr.Set(k, ab);
    }
    return arr;
  }

  // Drops weak references whose view was collected (keeps views_ short).
  void PruneViews() {
    size_t j = 0;
    for (napi_ref r : views_) {
      napi_value v = nullptr;
      if (napi_get_reference_value(env_, r, &v) == napi_ok && v != nullptr) views_[j++] = r;
      else napi_delete_reference(env_, r);
    }
    views_.resize(j);
  }

  // ---- JS methods (bound by PagerMethods<W>) ----------------------------------
#define PERSIST_GUARD(body)                          \
  try {                                              \
    body                                             \
  } catch (const persist::Error& e) {                \
    ThrowPersistError(info.Env(), e);                \
  }
  Napi::Value JsBegin(const Napi::CallbackInfo& info) {
    PERSIST_GUARD(return Napi::Number::New(info.Env(), pager().begin());)
  }
  Napi::Value JsCommit(const Napi::CallbackInfo& info) {
    PERSIST_GUARD(pager().commit(); return info.Env().Undefined();)
  }
  Napi::Value JsAbort(const Napi::CallbackInfo& info) {
    PERSIST_GUARD(pager().abort(); return info.Env().Undefined();)
  }
  Napi::Value JsSavepoint(const Napi::CallbackInfo& info) {
    PERSIST_GUARD(return Napi::Number::New(info.Env(), double(pager().savepoint()));)
  }
  Napi::Value JsRollbackTo(const Napi::CallbackInfo& info) {
    uint64_t t = ArgU64(info, 0, "savepoint");
    PERSIST_GUARD(pager().rollback_to(t); return info.Env().Undefined();)
  }
  Napi::Value JsWillWrite(const Napi::CallbackInfo& info) {
    uint64_t off = ArgU64(info, 0, "offset"), len = ArgU64(info, 1, "length");
    PERSIST_GUARD(pager().will_write(off, len); return info.Env().Undefined();)
  }
  Napi::Value JsAllocPages(const Napi::CallbackInfo& info) {
    uint64_t n = ArgU64(info, 0, "pages");
    PERSIST_GUARD(return Napi::Number::New(info.Env(), double(pager().alloc_pages(n)));)
  }
  Napi::Value JsFreePages(const Napi::CallbackInfo& info) {
    uint64_t p = ArgU64(info, 0, "page");
    PERSIST_GUARD(pager().free_pages(p); return info.Env().Undefined();)
  }
  Napi::Value JsExtendRun(const Napi::CallbackInfo& info) {
    uint64_t p = ArgU64(info, 0, "page"), n = ArgU64(info, 1, "pages");
    PERSIST_GUARD(return Napi::Boolean::New(info.Env(), pager().extend_run(p, n));)
  }
  Napi::Value JsRunLength(const Napi::CallbackInfo& info) {
    uint64_t p = ArgU64(info, 0, "page");
    PERSIST_GUARD(return Napi::Number::New(info.Env(), double(pager().run_length(p)));)
  }
  Napi::Value JsRunStart(const Napi::CallbackInfo& info) {
    uint64_t p = ArgU64(info, 0, "page");
    PERSIST_GUARD(uint64_t s = pager().run_start(p);
                  return Napi::Number::New(info.Env(), s == UINT64_MAX ? -1.0 : double(s));)
  }
  Napi::Value JsSlot(const Napi::CallbackInfo& info) {
    uint64_t i = ArgU64(info, 0, "slot index");
    PERSIST_GUARD(return Napi::Number::New(info.Env(), double(pager().slot(unsigned(std::min<uint64_t>(i, 1000)))));)
  }
  Napi::Value JsSetSlot(const Napi::CallbackInfo& info) {
    uint64_t i = ArgU64(info, 0, "slot index"), v = ArgU64(info, 1, "slot value");
    PERSIST_GUARD(pager().set_slot(unsigned(std::min<uint64_t>(i, 1000)), v); return info.Env().Undefined();)
  }
  Napi::Value JsStats(const Napi::CallbackInfo& info) {
    PERSIST_GUARD(persist::PagerStats s = pager().stats(); Napi::Object o = Napi::Object::New(info.Env());
                  o.Set("pageCount", double(s.page_count)); o.Set("freePages", double(s.free_pages));
                  o.Set("fileBytes", double(s.file_bytes)); o.Set("mappedBytes", double(s.mapped_bytes));
                  o.Set("txid", double(s.txid)); o.Set("journalChunks", double(s.journal_chunks));
                  o.Set("journalEntries", double(s.journal_entries)); return o;)
  }
  Napi::Value JsCheck(const Napi::CallbackInfo& info) {
    PERSIST_GUARD(std::vector<std::string> v = pager().check(); Napi::Array a = Napi::Array::New(info.Env(), v.size());
                  for (size_t i = 0; i < v.size(); ++i) a.Set(uint32_t(i), Napi::String::New(info.Env(), v[i]));
                  return a;)
  }
  Napi::Value JsWaitForCommit(const Napi::CallbackInfo& info) {
    uint64_t seen = ArgU64(info, 0, "txid"), ms = ArgU64(info, 1, "timeoutMs");
    PERSIST_GUARD(return Napi::Boolean::New(info.Env(), pager().wait_for_commit(seen, uint32_t(std::min<uint64_t>(ms, UINT32_MAX))));)
  }
  Napi::Value JsClose(const Napi::CallbackInfo& info) {
    if (pager_) BeforeClose();
    ClosePager();
    return info.Env().Undefined();
  }
  Napi::Value JsWindows(const Napi::CallbackInfo& info) { PERSIST_GUARD(return Windows(info.Env());) }
  Napi::Value JsMapGeneration(const Napi::CallbackInfo& info) {
    PERSIST_GUARD(return Napi::Number::New(info.Env(), pager().map_generation());)
  }
  Napi::Value JsMappedBytes(const Napi::CallbackInfo& info) {
    PERSIST_GUARD(return Napi::Number::New(info.Env(), double(pager().mapped_bytes()));)
  }
  Napi::Value JsTxid(const Napi::CallbackInfo& info) {
    PERSIST_GUARD(return Napi::Number::New(info.Env(), double(pager().header()->hd_txid));)
  }
  Napi::Value JsOwnCommitTxid(const Napi::CallbackInfo& info) {
    PERSIST_GUARD(return Napi::Number::New(info.Env(), double(pager().own_commit_txid()));)
  }
  Napi::Value JsInTxn(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), pager_ != nullptr && pager_->in_txn());
  }
  Napi::Value JsClosed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), pager_ == nullptr); }
  Napi::Value JsReadonly(const Napi::CallbackInfo& info) {
    PERSIST_GUARD(return Napi::Boolean::New(info.Env(), pager().readonly());)
  }
  Napi::Value JsPath(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), path_); }
#undef PERSIST_GUARD

  const std::string& path_str() const { return path_; }

  // Installs the hot methods (begin, commit, abort, willWrite, savepoint,
  // rollbackTo, allocPages, inTxn, mapGeneration) as own properties of `self`:
  // functions whose napi data points at this holder, so a call skips napi_unwrap
  // (a private-symbol lookup: ~100 ns per call measured here). Each function keeps
  // `self` alive through a hidden property, so the data cannot dangle. Call it from
  // the handle's constructor; without it the prototype methods work, just slower.
  void InstallFastMethods(Napi::Env env, Napi::Object self) {
    using M = Napi::Value (PagerHolder::*)(const Napi::CallbackInfo&);
    const std::pair<const char*, M> defs[] = {
        {"begin", &PagerHolder::JsBegin},         {"commit", &PagerHolder::JsCommit},
        {"abort", &PagerHolder::JsAbort},         {"willWrite", &PagerHolder::JsWillWrite},
        {"savepoint", &PagerHolder::JsSavepoint}, {"rollbackTo", &PagerHolder::JsRollbackTo},
        {"allocPages", &PagerHolder::JsAllocPages}, {"inTxn", &PagerHolder::JsInTxn},
        {"mapGeneration", &PagerHolder::JsMapGeneration},
    };
    for (const auto& d : defs) {
      fast_.push_back(std::unique_ptr<FastData>(new FastData{this, d.second}));
      napi_value fn;
      if (napi_create_function(env, d.first, NAPI_AUTO_LENGTH, &FastTrampoline, fast_.back().get(), &fn) != napi_ok)
        throw Napi::Error::New(env, "cannot create a native method");
      Napi::Function f(env, fn);
      f.DefineProperty(Napi::PropertyDescriptor::Value("__owner", self, napi_default));
      self.DefineProperty(Napi::PropertyDescriptor::Value(d.first, f, napi_default));
    }
  }

 private:
  struct FastData {
    PagerHolder* holder;
    Napi::Value (PagerHolder::*method)(const Napi::CallbackInfo&);
  };
  static napi_value FastTrampoline(napi_env env, napi_callback_info cbinfo) {
    Napi::CallbackInfo info(env, cbinfo);
    auto* d = static_cast<FastData*>(info.Data());
    try {
      return ((d->holder)->*(d->method))(info);
    } catch (const Napi::Error& e) {
      e.ThrowAsJavaScriptException();
    } catch (const std::exception& e) {
      Napi::Error::New(env, e.what()).ThrowAsJavaScriptException();
    }
    return nullptr;
  }
  std::vector<std::unique_ptr<FastData>> fast_;

 public:


 protected:
  std::unique_ptr<persist::Pager> pager_;
  std::vector<napi_ref> views_;  // weak references to the windows handed out
  napi_env env_ = nullptr;
  std::string path_;
};

// The pager methods as instance methods of W (W derives from Napi::ObjectWrap<W> and
// PagerHolder). JS names are listed in @persist/pager's src/native.ts (NativePager).
template <class W>
std::vector<Napi::ClassPropertyDescriptor<W>> PagerMethods() {
  using M = Napi::Value (W::*)(const Napi::CallbackInfo&);
  struct Def {
    const char* name;
    Napi::Value (PagerHolder::*fn)(const Napi::CallbackInfo&);
  };
  static const Def defs[] = {
      {"begin", &PagerHolder::JsBegin},           {"commit", &PagerHolder::JsCommit},
      {"abort", &PagerHolder::JsAbort},           {"savepoint", &PagerHolder::JsSavepoint},
      {"rollbackTo", &PagerHolder::JsRollbackTo}, {"willWrite", &PagerHolder::JsWillWrite},
      {"allocPages", &PagerHolder::JsAllocPages}, {"freePages", &PagerHolder::JsFreePages},
      {"extendRun", &PagerHolder::JsExtendRun},   {"runLength", &PagerHolder::JsRunLength},
      {"runStart", &PagerHolder::JsRunStart},     {"slot", &PagerHolder::JsSlot},
      {"setSlot", &PagerHolder::JsSetSlot},       {"stats", &PagerHolder::JsStats},
      {"check", &PagerHolder::JsCheck},           {"close", &PagerHolder::JsClose},
      {"windows", &PagerHolder::JsWindows},       {"mapGeneration", &PagerHolder::JsMapGeneration},
      {"mappedBytes", &PagerHolder::JsMappedBytes}, {"txid", &PagerHolder::JsTxid},
      {"ownCommitTxid", &PagerHolder::JsOwnCommitTxid}, {"inTxn", &PagerHolder::JsInTxn},           {"closed", &PagerHolder::JsClosed},
      {"readonly", &PagerHolder::JsReadonly},     {"path", &PagerHolder::JsPath},
      {"waitForCommit", &PagerHolder::JsWaitForCommit},
  };
  std::vector<Napi::ClassPropertyDescriptor<W>> out;
  for (const Def& d : defs) out.push_back(W::InstanceMethod(d.name, static_cast<M>(d.fn)));
  return out;
}

}  // namespace persist_napi
