// v8_window.h — views of the store mapping that V8 does not count as external memory.
//
// Why: V8 adds the length of every ArrayBuffer to its "external memory" count and,
// once the count jumps past a limit, runs full mark-compact collections ("external
// memory pressure") right inside the call that created the buffer. Node-API's
// napi_create_external_arraybuffer goes through that accounting, so the windows of a
// 4 GiB store (6 GiB of overlapping views) cost several full GCs per open: 5-125 ms
// measured, growing with the application's JS heap. The views cover a file mapping,
// not memory a GC could give back. V8 does not count a backing store whose deleter is
// v8::BackingStore::EmptyDeleter, so that is what NewWindow() creates: open becomes
// O(1) again (a few µs per window).
//
// How, without tying the addon to one V8 ABI: v8.h is used for the types only, and the
// four V8 functions are looked up at run time with dlsym in the running node binary.
// The fast path is used only when the running Node has the same major version as the
// headers the addon was compiled with (Node keeps V8's ABI stable within a major) and
// every symbol is found; otherwise (another major, headers absent at build time, or
// PERSIST_V8_WINDOWS=0 in the environment) callers fall back to Node-API.
//
// The buffers made here are ordinary detachable ArrayBuffers: close() detaches them
// with napi_detach_arraybuffer exactly like the Node-API ones, and EmptyDeleter makes
// freeing them a no-op (the pager unmaps the memory itself).
#pragma once

#include <node_api.h>

#if defined(PERSIST_HAVE_V8_H)
#include <dlfcn.h>
#include <node_version.h>
#include <v8.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#endif

namespace persist_napi {

#if defined(PERSIST_HAVE_V8_H)

class V8Windows {
 public:
  // True when NewWindow() can be used in this process (decided once).
  static bool Available(napi_env env) {
    static const int state = Probe(env);
    return state == 1;
  }

  // An ArrayBuffer over [data, data+len) that V8 does not account (see the top).
  // Returns nullptr on failure (the caller falls back to Node-API).
  static napi_value NewWindow(void* data, size_t len) {
    const Syms& s = syms();
    v8::Isolate* isolate = s.get_current();
    if (isolate == nullptr) return nullptr;
    std::unique_ptr<v8::BackingStore> bs = s.new_backing_store(data, len, s.empty_deleter, nullptr);
    if (!bs) return nullptr;
    v8::Local<v8::ArrayBuffer> ab = s.new_array_buffer(isolate, std::shared_ptr<v8::BackingStore>(std::move(bs)));
    // Node-API's napi_value is a v8::Local's slot pointer (v8impl::JsValueFromV8LocalValue);
    // the handle lives in the HandleScope Node-API opened around this native call.
    napi_value out;
    v8::Local<v8::Value> v = ab;
    static_assert(sizeof(v) == sizeof(out), "v8::Local must be one pointer");
    std::memcpy(&out, &v, sizeof(out));
    return out;
  }

 private:
  using NewBackingStoreFn = std::unique_ptr<v8::BackingStore> (*)(void*, size_t, v8::BackingStore::DeleterCallback,
                                                                   void*);
  using NewArrayBufferFn = v8::Local<v8::ArrayBuffer> (*)(v8::Isolate*, std::shared_ptr<v8::BackingStore>);
  using GetCurrentFn = v8::Isolate* (*)();
  struct Syms {
    NewBackingStoreFn new_backing_store = nullptr;
    NewArrayBufferFn new_array_buffer = nullptr;
    GetCurrentFn get_current = nullptr;
    v8::BackingStore::DeleterCallback empty_deleter = nullptr;
  };
  static Syms& syms() {
    static Syms s;
    return s;
  }

  template <typename F>
  static bool Find(F& out, const char* mangled) {
    void* p = dlsym(RTLD_DEFAULT, mangled);
    out = reinterpret_cast<F>(p);
    return p != nullptr;
  }

  static int Probe(napi_env env) {
    const char* off = std::getenv("PERSIST_V8_WINDOWS");
    if (off != nullptr && std::strcmp(off, "0") == 0) return 0;
    const napi_node_version* nv = nullptr;
    if (napi_get_node_version(env, &nv) != napi_ok || nv == nullptr || nv->major != NODE_MAJOR_VERSION) return 0;
    Syms& s = syms();
    // Itanium C++ ABI names of the four functions (checked against `nm -D node`).
    bool ok = Find(s.new_backing_store, "_ZN2v811ArrayBuffer15NewBackingStoreEPvmPFvS1_mS1_ES1_") &&
              Find(s.new_array_buffer, "_ZN2v811ArrayBuffer3NewEPNS_7IsolateESt10shared_ptrINS_12BackingStoreEE") &&
              Find(s.get_current, "_ZN2v87Isolate10GetCurrentEv") &&
              Find(s.empty_deleter, "_ZN2v812BackingStore12EmptyDeleterEPvmS1_");
    return ok ? 1 : 0;
  }
};

#else  // built without Node's v8.h: Node-API windows only

class V8Windows {
 public:
  static bool Available(napi_env) { return false; }
  static napi_value NewWindow(void*, size_t) { return nullptr; }
};

#endif

}  // namespace persist_napi
