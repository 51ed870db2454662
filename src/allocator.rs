//! The process's allocator: jemalloc serves every allocation, C-core's
//! included (its `malloc` replaces libc's): less CPU per streamed message
//! (docs/tuning-log.md).

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main`. By default it keeps freed pages
/// for ~10 s and purges them only when the freeing thread allocates again, so
/// after a flood (docs/http2-floods.md) idle arenas held the peak's RSS. A
/// background thread (`jemalloc_bg_thd`) purges dirty and muzzy pages after
/// 1 s each, so the memory returns to the system once an attacker is gone.
/// The symbol is `malloc_conf` because the allocator is unprefixed
/// (`unprefixed_malloc_on_supported_platforms`); prefixed, it would be
/// `_rjem_malloc_conf`. `#[used]`: nothing in Rust reads it, jemalloc does.
#[no_mangle]
#[used]
#[allow(non_upper_case_globals)]
static malloc_conf: MallocConf =
    MallocConf(c"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:1000".as_ptr());

/// C's `const char *`, which jemalloc reads once; a raw pointer is not `Sync`.
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);

// SAFETY: it points to a static, immutable C string.
unsafe impl Sync for MallocConf {}
