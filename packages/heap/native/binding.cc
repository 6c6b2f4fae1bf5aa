// binding.cc — N-API surface of @persist/heap: one handle class (HeapHandle) holding a
// Pager and a Heap over it. The pager's methods come from pager_binding.h (same names
// as @persist/pager's handle, so the TS Pager class wraps this handle too); the heap
// adds alloc/free/realloc/usableSize/root/setRoot/heapStats/heapCheck/blocks.
//
// Heap mutations called outside a transaction run in their own (begin, op, commit;
// abort on error), so JS needs one native call per operation. After every heap call
// the handle stores the pager's map generation in state()[0] (a Uint32Array shared
// with JS): the TS layer compares it to refresh its views of the mapping when the
// file grew, without another native call.
#include <napi.h>

#include "heap.h"
#include "pager.h"
#include "pager_binding.h"

namespace {

// Bump when the JS-visible surface of the addon changes (src/index.ts checks it).
constexpr int kAbiVersion = 2;

class HeapHandle : public Napi::ObjectWrap<HeapHandle>, public persist_napi::PagerHolder {
 public:
  explicit HeapHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<HeapHandle>(info) {
    OpenFromArgs(info);
    heap_ = std::make_unique<persist::Heap>(*pager_);
    Napi::Object self = info.This().As<Napi::Object>();
    InstallFastMethods(info.Env(), self);  // the pager's hot methods without napi_unwrap
    InstallHeapFastMethods(info.Env(), self);
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(info.Env(), 16);
    state_ = static_cast<uint32_t*>(ab.Data());
    state_ref_ = Napi::Persistent(ab);
    Publish();
  }

  static Napi::Function Define(Napi::Env env) {
    auto props = persist_napi::PagerMethods<HeapHandle>();
    props.push_back(InstanceMethod("heapInitialized", &HeapHandle::Initialized));
    props.push_back(InstanceMethod("heapInit", &HeapHandle::Init));
    props.push_back(InstanceMethod("alloc", &HeapHandle::Alloc));
    props.push_back(InstanceMethod("free", &HeapHandle::Free));
    props.push_back(InstanceMethod("realloc", &HeapHandle::Realloc));
    props.push_back(InstanceMethod("usableSize", &HeapHandle::UsableSize));
    props.push_back(InstanceMethod("root", &HeapHandle::Root));
    props.push_back(InstanceMethod("setRoot", &HeapHandle::SetRoot));
    props.push_back(InstanceMethod("heapStats", &HeapHandle::Stats));
    props.push_back(InstanceMethod("heapCheck", &HeapHandle::Check));
    props.push_back(InstanceMethod("blocks", &HeapHandle::Blocks));
    props.push_back(InstanceMethod("state", &HeapHandle::State));
    return DefineClass(env, "HeapHandle", props);
  }

  void BeforeClose() override { heap_.reset(); }

 private:
  // Like PagerHolder::InstallFastMethods, for the heap's hot methods: own properties
  // of `self` whose napi data points at this handle, so a call skips napi_unwrap and
  // the ObjectWrap dispatch (about 100 ns per call). Each function holds `self`
  // through a hidden property, so the data cannot outlive the handle.
  struct HeapFast {
    HeapHandle* handle;
    Napi::Value (HeapHandle::*method)(const Napi::CallbackInfo&);
  };
  static napi_value HeapTrampoline(napi_env env, napi_callback_info cbinfo) {
    Napi::CallbackInfo info(env, cbinfo);
    auto* d = static_cast<HeapFast*>(info.Data());
    try {
      return ((d->handle)->*(d->method))(info);
    } catch (const Napi::Error& e) {
      e.ThrowAsJavaScriptException();
    } catch (const std::exception& e) {
      Napi::Error::New(env, e.what()).ThrowAsJavaScriptException();
    }
    return nullptr;
  }
  void InstallHeapFastMethods(Napi::Env env, Napi::Object self) {
    const std::pair<const char*, Napi::Value (HeapHandle::*)(const Napi::CallbackInfo&)> defs[] = {
        {"alloc", &HeapHandle::Alloc},
        {"free", &HeapHandle::Free},
        {"realloc", &HeapHandle::Realloc},
        {"usableSize", &HeapHandle::UsableSize},
    };
    for (const auto& d : defs) {
      heap_fast_.push_back(std::unique_ptr<HeapFast>(new HeapFast{this, d.second}));
      napi_value fn;
      if (napi_create_function(env, d.first, NAPI_AUTO_LENGTH, &HeapTrampoline, heap_fast_.back().get(), &fn) != napi_ok)
        throw Napi::Error::New(env, "cannot create a native method");
      Napi::Function f(env, fn);
      f.DefineProperty(Napi::PropertyDescriptor::Value("__owner", self, napi_default));
      self.DefineProperty(Napi::PropertyDescriptor::Value(d.first, f, napi_default));
    }
  }

  persist::Heap& heap() {
    if (!heap_) throw persist::Error(persist::Code::CLOSED, "the store is closed; open it again to use it");
    return *heap_;
  }
  void Publish() {
    if (pager_) state_[0] = pager_->map_generation();
  }

  // Runs fn inside the caller's transaction, or in its own one when none is active.
  template <class F>
  auto Mutate(const Napi::CallbackInfo& info, F&& fn) -> decltype(fn()) {
    try {
      persist::Pager& p = pager();
      persist::Heap& h = heap();
      (void)h;
      if (p.in_txn()) {
        auto r = fn();
        Publish();
        return r;
      }
      p.begin();
      try {
        auto r = fn();
        p.commit();
        Publish();
        return r;
      } catch (...) {
        if (p.in_txn()) p.abort();
        Publish();
        throw;
      }
    } catch (const persist::Error& e) {
      persist_napi::ThrowPersistError(info.Env(), e);
    }
  }
  // Reads under the caller's transaction or, with none, a short one of their own
  // (so another process cannot change the heap mid-read).
  template <class F>
  auto Read(const Napi::CallbackInfo& info, F&& fn) -> decltype(fn()) {
    return Mutate(info, std::forward<F>(fn));
  }

  Napi::Value Initialized(const Napi::CallbackInfo& info) {
    try {
      return Napi::Boolean::New(info.Env(), heap().initialized());
    } catch (const persist::Error& e) {
      persist_napi::ThrowPersistError(info.Env(), e);
    }
  }
  Napi::Value Init(const Napi::CallbackInfo& info) {
    Mutate(info, [&] {
      heap().init();
      return 0;
    });
    return info.Env().Undefined();
  }
  Napi::Value Alloc(const Napi::CallbackInfo& info) {
    uint64_t size = persist_napi::ArgU64(info, 0, "size");
    bool zero = info.Length() > 1 && info[1].ToBoolean().Value();
    return Napi::Number::New(info.Env(), double(Mutate(info, [&] { return heap().alloc(size, zero); })));
  }
  Napi::Value Free(const Napi::CallbackInfo& info) {
    uint64_t off = persist_napi::ArgU64(info, 0, "offset");
    Mutate(info, [&] {
      heap().free(off);
      return 0;
    });
    return info.Env().Undefined();
  }
  Napi::Value Realloc(const Napi::CallbackInfo& info) {
    uint64_t off = persist_napi::ArgU64(info, 0, "offset");
    uint64_t size = persist_napi::ArgU64(info, 1, "size");
    return Napi::Number::New(info.Env(), double(Mutate(info, [&] { return heap().realloc(off, size); })));
  }
  Napi::Value UsableSize(const Napi::CallbackInfo& info) {
    uint64_t off = persist_napi::ArgU64(info, 0, "offset");
    return Napi::Number::New(info.Env(), double(Read(info, [&] { return heap().usable_size(off); })));
  }
  Napi::Value Root(const Napi::CallbackInfo& info) {
    uint64_t i = persist_napi::ArgU64(info, 0, "root index");
    return Napi::Number::New(info.Env(), double(Read(info, [&] { return heap().root(unsigned(std::min<uint64_t>(i, 1000))); })));
  }
  Napi::Value SetRoot(const Napi::CallbackInfo& info) {
    uint64_t i = persist_napi::ArgU64(info, 0, "root index");
    uint64_t off = persist_napi::ArgU64(info, 1, "offset");
    Mutate(info, [&] {
      heap().set_root(unsigned(std::min<uint64_t>(i, 1000)), off);
      return 0;
    });
    return info.Env().Undefined();
  }
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    persist::HeapStats s = Read(info, [&] { return heap().stats(); });
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("bytesLive", double(s.bytes_live));
    o.Set("blocksLive", double(s.blocks_live));
    o.Set("bytesFreeInSlabs", double(s.bytes_free_in_slabs));
    o.Set("slabPages", double(s.slab_pages));
    o.Set("largePages", double(s.large_pages));
    o.Set("largeBlocks", double(s.large_blocks));
    o.Set("metaPages", double(s.meta_pages));
    o.Set("heapPages", double(s.heap_pages));
    o.Set("totalPages", double(s.total_pages));
    o.Set("freePages", double(s.free_pages));
    o.Set("fragmentation", s.fragmentation);
    Napi::Array classes = Napi::Array::New(env, PST_HEAP_CLASS_COUNT);
    for (unsigned c = 0; c < PST_HEAP_CLASS_COUNT; c++) {
      const persist::HeapClassStats& k = s.classes[c];
      Napi::Object x = Napi::Object::New(env);
      x.Set("blockSize", double(k.block_size));
      x.Set("slabPages", double(k.slab_pages));
      x.Set("slabCapacity", double(k.slab_capacity));
      x.Set("slabs", double(k.slabs));
      x.Set("live", double(k.live));
      x.Set("capacity", double(k.capacity));
      classes.Set(c, x);
    }
    o.Set("classes", classes);
    return o;
  }
  Napi::Value Check(const Napi::CallbackInfo& info) {
    std::vector<std::string> v = Read(info, [&] { return heap().check(); });
    Napi::Array a = Napi::Array::New(info.Env(), v.size());
    for (size_t i = 0; i < v.size(); ++i) a.Set(uint32_t(i), Napi::String::New(info.Env(), v[i]));
    return a;
  }
  Napi::Value Blocks(const Napi::CallbackInfo& info) {
    std::vector<double> offs = Read(info, [&] {
      std::vector<double> v;
      heap().for_each_block([&](uint64_t off, uint64_t) { v.push_back(double(off)); });
      return v;
    });
    Napi::Float64Array a = Napi::Float64Array::New(info.Env(), offs.size());
    for (size_t i = 0; i < offs.size(); i++) a[i] = offs[i];
    return a;
  }
  Napi::Value State(const Napi::CallbackInfo&) { return state_ref_.Value(); }

  std::unique_ptr<persist::Heap> heap_;
  std::vector<std::unique_ptr<HeapFast>> heap_fast_;
  uint32_t* state_ = nullptr;
  Napi::Reference<Napi::ArrayBuffer> state_ref_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, kAbiVersion));
  exports.Set("align", Napi::Number::New(env, persist::kHeapAlign));
  exports.Set("maxAlloc", Napi::Number::New(env, double(persist::kHeapMaxAlloc)));
  exports.Set("maxSmall", Napi::Number::New(env, persist::kHeapMaxSmall));
  exports.Set("rootCount", Napi::Number::New(env, PST_HEAP_ROOT_COUNT));
  exports.Set("setErrorClass", Napi::Function::New(env, persist_napi::SetErrorClassFn, "setErrorClass"));
  exports.Set("HeapHandle", HeapHandle::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(heap, Init)
