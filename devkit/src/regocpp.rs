//! rego-cpp, Microsoft's C++ Rego engine, as a second opinion on the policy library: a test
//! runs the same policies on it and on regorus (the gate's engine) and compares.
//!
//! rego-cpp comes from PyPI (`regopy`, whose wheel ships the C API as `librego_shared.so`),
//! installed by [`crate::envoy::pip_install`] into `.tools/python/` on first use.
//! `GATEWARD_REGOCPP=/path/to/librego_shared.so` uses another build.
//!
//! [`RegoCpp`] loads the library; an [`Interpreter`] holds modules, data and input and answers
//! queries with rego-cpp's own text output. Known rego-cpp 1.5.2 faults seen through this API:
//! `regoBuild` aborts the process when its compiler throws (use [`Interpreter::query`] first,
//! which catches), and some compiler faults corrupt memory (a later call may crash).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

use crate::envoy;

/// The regopy (rego-cpp) release the project is tested with.
pub const REGOPY_VERSION: &str = "1.5.2";

/// Why rego-cpp could not be installed, loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum RegoCppError {
    /// pip failed or the library is missing afterwards.
    #[error("cannot install rego-cpp {REGOPY_VERSION} from PyPI (regopy): {0}")]
    Install(String),
    /// The shared library could not be loaded or lacks a function.
    #[error("cannot load rego-cpp from {path}: {why}")]
    Load {
        /// The library.
        path: PathBuf,
        /// What failed.
        why: String,
    },
    /// rego-cpp refused a call (a module that does not compile, data that is not an object, a
    /// query that failed); the text is rego-cpp's error message.
    #[error("rego-cpp: {0}")]
    Rego(String),
    /// A string passed in contains a NUL byte.
    #[error("text with a NUL byte cannot be passed to rego-cpp")]
    Nul,
}

/// `librego_shared.so` from `regopy` [`REGOPY_VERSION`], installed into `.tools/python` with pip
/// if it is not there yet (or `$GATEWARD_REGOCPP`).
pub fn library() -> Result<PathBuf, RegoCppError> {
    if let Some(p) = std::env::var_os("GATEWARD_REGOCPP") {
        return Ok(PathBuf::from(p));
    }
    envoy::pip_install(
        &format!("rego-cpp {REGOPY_VERSION}"),
        "regopy",
        REGOPY_VERSION,
        "regopy/librego_shared.so",
    )
    .map_err(RegoCppError::Install)
}

/// One result of [`Interpreter::query`]: rego-cpp's output text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Whether rego-cpp flagged the output as a result (not an error sequence).
    pub ok: bool,
    /// The text: `{"expressions":[...]}` (with `"bindings"` when the query binds variables),
    /// `undefined`, or an error. rego-cpp 1.5.2 does not always escape quotes in strings, so
    /// the text is not always valid JSON.
    pub text: String,
}

impl Output {
    /// The value of the query's (first) expression: `Ok(None)` when undefined, `Err` with the
    /// text when it is an error or cannot be read as JSON.
    pub fn value(&self) -> Result<Option<Value>, String> {
        let text = self.text.trim();
        if self.ok && text == "undefined" {
            return Ok(None);
        }
        let parsed: Value = match serde_json::from_str(text) {
            Ok(v) if self.ok => v,
            _ => return Err(self.text.clone()),
        };
        match parsed.get("expressions").and_then(Value::as_array) {
            Some(exprs) => Ok(exprs.first().cloned()),
            None => Err(self.text.clone()),
        }
    }
}

/// The loaded rego-cpp library.
pub struct RegoCpp {
    api: ffi::Api,
    path: PathBuf,
}

impl std::fmt::Debug for RegoCpp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RegoCpp({})", self.path.display())
    }
}

// rego-cpp does not document which of its state is global (logging is), so this wrapper keeps
// one interpreter alive at a time in the process.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

impl RegoCpp {
    /// Installs (see [`library`]) and loads rego-cpp.
    pub fn installed() -> Result<RegoCpp, RegoCppError> {
        RegoCpp::open(&library()?)
    }

    /// Loads rego-cpp's shared library from `path`.
    pub fn open(path: &Path) -> Result<RegoCpp, RegoCppError> {
        let api = ffi::Api::open(path).map_err(|why| RegoCppError::Load {
            path: path.to_path_buf(),
            why,
        })?;
        Ok(RegoCpp {
            api,
            path: path.to_path_buf(),
        })
    }

    /// The library's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// rego-cpp's version, e.g. `1.5.2`.
    pub fn version(&self) -> String {
        self.api.version()
    }

    /// A new interpreter with logging off (errors come back through the calls). Waits while
    /// another interpreter of this process is alive: do not hold two in one thread.
    pub fn interpreter(&self) -> Result<Interpreter<'_>, RegoCppError> {
        let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let raw = self
            .api
            .new_interpreter()
            .ok_or_else(|| RegoCppError::Rego("regoNew returned no interpreter".into()))?;
        Ok(Interpreter { raw, _guard: guard })
    }
}

/// A rego-cpp interpreter: modules, data and input, and queries over them. Freed on drop.
/// Every query compiles everything loaded (about half a second for the policy library); a
/// [`Bundle`] compiles once for many queries.
pub struct Interpreter<'a> {
    raw: ffi::Raw<'a>,
    _guard: MutexGuard<'static, ()>,
}

impl std::fmt::Debug for Interpreter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Interpreter")
    }
}

impl<'a> Interpreter<'a> {
    /// Adds a policy module (parsed now; compiled with everything else at query time).
    pub fn add_module(&self, name: &str, text: &str) -> Result<(), RegoCppError> {
        self.raw.add_module(name, text)
    }

    /// Merges a JSON object into the base document (`data`).
    pub fn add_data_json(&self, json: &str) -> Result<(), RegoCppError> {
        self.raw.add_data_json(json)
    }

    /// Sets `input` to a JSON value.
    pub fn set_input_json(&self, json: &str) -> Result<(), RegoCppError> {
        self.raw.set_input_term(json)
    }

    /// Compiles everything loaded and evaluates `query`. `Err` when rego-cpp threw (a module
    /// that its compiler cannot handle, for instance); an evaluation error is an `Ok` output
    /// whose text is the error.
    pub fn query(&self, query: &str) -> Result<Output, RegoCppError> {
        self.raw.query(query)
    }

    /// Compiles everything loaded once, with execution plans for `entrypoints` (rule paths
    /// written `a/b/rule`). rego-cpp 1.5.2 aborts the process when its compiler throws here:
    /// check the modules with [`Interpreter::query`] first.
    pub fn build(&self, entrypoints: &[&str]) -> Result<Bundle<'_, 'a>, RegoCppError> {
        for e in entrypoints {
            self.raw.add_entrypoint(e)?;
        }
        let raw = self.raw.build()?;
        Ok(Bundle {
            interpreter: self,
            raw,
        })
    }
}

/// A compiled bundle of an [`Interpreter`]'s modules and data. Freed on drop.
pub struct Bundle<'i, 'a> {
    interpreter: &'i Interpreter<'a>,
    raw: ffi::RawBundle<'a>,
}

impl std::fmt::Debug for Bundle<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bundle")
    }
}

impl Bundle<'_, '_> {
    /// Evaluates `entrypoint` (one given to [`Interpreter::build`]) on the interpreter's
    /// current input.
    pub fn query(&self, entrypoint: &str) -> Result<Output, RegoCppError> {
        self.interpreter.raw.query_bundle(&self.raw, entrypoint)
    }
}

/// The C API (`rego/rego_c.h`), loaded at run time. All `unsafe` of this crate is here.
#[allow(unsafe_code)]
mod ffi {
    use std::ffi::{c_char, c_void, CString};
    use std::path::Path;
    use std::ptr::NonNull;

    use libloading::Library;

    use super::{Output, RegoCppError};

    const REGO_OK: u32 = 0;
    const REGO_LOG_LEVEL_NONE: u32 = 0;

    type NewFn = unsafe extern "C" fn() -> *mut c_void;
    type FreeFn = unsafe extern "C" fn(*mut c_void);
    type SetLogLevelFn = unsafe extern "C" fn(*mut c_void, u32) -> u32;
    type AddModuleFn = unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char) -> u32;
    type WithTextFn = unsafe extern "C" fn(*mut c_void, *const c_char) -> u32;
    type QueryFn = unsafe extern "C" fn(*mut c_void, *const c_char) -> *mut c_void;
    type BuildFn = unsafe extern "C" fn(*mut c_void) -> *mut c_void;
    type BundleQueryFn =
        unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_char) -> *mut c_void;
    type OkFn = unsafe extern "C" fn(*mut c_void) -> u8;
    type SizeOfFn = unsafe extern "C" fn(*mut c_void) -> u32;
    type TextOfFn = unsafe extern "C" fn(*mut c_void, *mut c_char, u32) -> u32;
    type SizeFn = unsafe extern "C" fn() -> u32;
    type TextFn = unsafe extern "C" fn(*mut c_char, u32) -> u32;

    /// The functions used, copied out of the library, which `_lib` keeps loaded.
    pub(super) struct Api {
        new: NewFn,
        free: FreeFn,
        set_log_level: SetLogLevelFn,
        add_module: AddModuleFn,
        add_data_json: WithTextFn,
        set_input_term: WithTextFn,
        add_entrypoint: WithTextFn,
        query: QueryFn,
        build: BuildFn,
        bundle_query_entrypoint: BundleQueryFn,
        bundle_ok: OkFn,
        free_bundle: FreeFn,
        output_ok: OkFn,
        output_json_size: SizeOfFn,
        output_json: TextOfFn,
        free_output: FreeFn,
        error_size: SizeOfFn,
        error: TextOfFn,
        version_size: SizeFn,
        version: TextFn,
        // Declared last: dropped after the pointers above are gone.
        _lib: Library,
    }

    /// Copies the function `name` (whose C signature `T` must match) out of `lib`.
    ///
    /// # Safety
    /// `T` must be the exact `extern "C"` function pointer type of the symbol.
    unsafe fn symbol<T: Copy>(lib: &Library, name: &str) -> Result<T, String> {
        // SAFETY: the caller guarantees `T` is the symbol's type; the pointer is used only while
        // `lib` stays loaded (`Api` owns it).
        unsafe { lib.get::<T>(name.as_bytes()) }
            .map(|s| *s)
            .map_err(|e| format!("{name}: {e}"))
    }

    impl Api {
        pub(super) fn open(path: &Path) -> Result<Api, String> {
            // SAFETY: loading runs the library's initialisers; librego_shared.so is rego-cpp's
            // C API, whose initialisers only set up its own statics.
            let lib = unsafe { Library::new(path) }.map_err(|e| e.to_string())?;
            // SAFETY: each type below is the prototype in rego-cpp's `rego/rego_c.h` (regoEnum,
            // regoSize: uint_least32_t; regoBoolean: uint_least8_t; the opaque types: void*).
            unsafe {
                Ok(Api {
                    new: symbol(&lib, "regoNew")?,
                    free: symbol(&lib, "regoFree")?,
                    set_log_level: symbol(&lib, "regoSetLogLevel")?,
                    add_module: symbol(&lib, "regoAddModule")?,
                    add_data_json: symbol(&lib, "regoAddDataJSON")?,
                    set_input_term: symbol(&lib, "regoSetInputTerm")?,
                    add_entrypoint: symbol(&lib, "regoAddEntrypoint")?,
                    query: symbol(&lib, "regoQuery")?,
                    build: symbol(&lib, "regoBuild")?,
                    bundle_query_entrypoint: symbol(&lib, "regoBundleQueryEntrypoint")?,
                    bundle_ok: symbol(&lib, "regoBundleOk")?,
                    free_bundle: symbol(&lib, "regoFreeBundle")?,
                    output_ok: symbol(&lib, "regoOutputOk")?,
                    output_json_size: symbol(&lib, "regoOutputJSONSize")?,
                    output_json: symbol(&lib, "regoOutputJSON")?,
                    free_output: symbol(&lib, "regoFreeOutput")?,
                    error_size: symbol(&lib, "regoErrorSize")?,
                    error: symbol(&lib, "regoError")?,
                    version_size: symbol(&lib, "regoVersionSize")?,
                    version: symbol(&lib, "regoVersion")?,
                    _lib: lib,
                })
            }
        }

        pub(super) fn version(&self) -> String {
            // SAFETY: regoVersionSize takes nothing; regoVersion writes at most `size` bytes
            // (the text and its NUL) into the buffer, which has `size` bytes.
            unsafe {
                let size = (self.version_size)();
                let mut buf = vec![0u8; size as usize];
                if (self.version)(buf.as_mut_ptr().cast(), size) != REGO_OK {
                    return String::new();
                }
                from_c_buffer(buf)
            }
        }

        pub(super) fn new_interpreter(&self) -> Option<Raw<'_>> {
            // SAFETY: regoNew takes nothing and returns a fresh interpreter (or null), which
            // `Raw` frees exactly once on drop.
            let ptr = NonNull::new(unsafe { (self.new)() })?;
            let raw = Raw { api: self, ptr };
            // SAFETY: `ptr` is a live interpreter; NONE is a valid level. Errors still come
            // back through regoError; only the copy printed to stdout is turned off.
            unsafe { (self.set_log_level)(ptr.as_ptr(), REGO_LOG_LEVEL_NONE) };
            Some(raw)
        }
    }

    /// Text from a buffer rego-cpp filled with a NUL-terminated string.
    fn from_c_buffer(mut buf: Vec<u8>) -> String {
        if let Some(end) = buf.iter().position(|b| *b == 0) {
            buf.truncate(end);
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    fn c_string(text: &str) -> Result<CString, RegoCppError> {
        CString::new(text).map_err(|_| RegoCppError::Nul)
    }

    /// An owned `regoInterpreter*`. Not `Send`/`Sync` (it holds a raw pointer).
    pub(super) struct Raw<'a> {
        api: &'a Api,
        ptr: NonNull<c_void>,
    }

    /// An owned `regoBundle*` of the interpreter `'a`'s library.
    pub(super) struct RawBundle<'a> {
        api: &'a Api,
        ptr: NonNull<c_void>,
    }

    /// An owned `regoOutput*`, freed on drop.
    struct RawOutput<'a> {
        api: &'a Api,
        ptr: NonNull<c_void>,
    }

    impl<'a> Raw<'a> {
        /// The interpreter's last error message.
        fn last_error(&self) -> String {
            // SAFETY: `self.ptr` is a live interpreter; regoError writes at most `size` bytes
            // (message and NUL) into a buffer of `size` bytes.
            unsafe {
                let size = (self.api.error_size)(self.ptr.as_ptr());
                let mut buf = vec![0u8; size.max(1) as usize];
                if (self.api.error)(self.ptr.as_ptr(), buf.as_mut_ptr().cast(), size) != REGO_OK {
                    return "(rego-cpp gave no error message)".into();
                }
                from_c_buffer(buf)
            }
        }

        fn check(&self, code: u32) -> Result<(), RegoCppError> {
            if code == REGO_OK {
                Ok(())
            } else {
                Err(RegoCppError::Rego(self.last_error()))
            }
        }

        pub(super) fn add_module(&self, name: &str, text: &str) -> Result<(), RegoCppError> {
            let (name, text) = (c_string(name)?, c_string(text)?);
            // SAFETY: a live interpreter and two NUL-terminated strings that outlive the call
            // (rego-cpp copies them).
            let code =
                unsafe { (self.api.add_module)(self.ptr.as_ptr(), name.as_ptr(), text.as_ptr()) };
            self.check(code)
        }

        fn with_text(&self, f: WithTextFn, text: &str) -> Result<(), RegoCppError> {
            let text = c_string(text)?;
            // SAFETY: `f` is one of the `(regoInterpreter*, const char*) -> regoEnum` functions;
            // a live interpreter and a NUL-terminated string that outlives the call (copied).
            let code = unsafe { f(self.ptr.as_ptr(), text.as_ptr()) };
            self.check(code)
        }

        pub(super) fn add_data_json(&self, json: &str) -> Result<(), RegoCppError> {
            self.with_text(self.api.add_data_json, json)
        }

        pub(super) fn set_input_term(&self, json: &str) -> Result<(), RegoCppError> {
            self.with_text(self.api.set_input_term, json)
        }

        pub(super) fn add_entrypoint(&self, entrypoint: &str) -> Result<(), RegoCppError> {
            self.with_text(self.api.add_entrypoint, entrypoint)
        }

        /// Takes ownership of an output pointer (null: the call threw; the message is the
        /// interpreter's error).
        fn output(&self, ptr: *mut c_void) -> Result<Output, RegoCppError> {
            let Some(ptr) = NonNull::new(ptr) else {
                return Err(RegoCppError::Rego(self.last_error()));
            };
            let out = RawOutput { api: self.api, ptr };
            Ok(out.read())
        }

        pub(super) fn query(&self, query: &str) -> Result<Output, RegoCppError> {
            let query = c_string(query)?;
            // SAFETY: a live interpreter and a NUL-terminated query; the returned output (or
            // null) is owned by `output`, which frees it.
            let ptr = unsafe { (self.api.query)(self.ptr.as_ptr(), query.as_ptr()) };
            self.output(ptr)
        }

        pub(super) fn build(&self) -> Result<RawBundle<'a>, RegoCppError> {
            // SAFETY: a live interpreter; the returned bundle (or null) is owned by `RawBundle`,
            // which frees it once.
            let ptr = unsafe { (self.api.build)(self.ptr.as_ptr()) };
            let ptr = NonNull::new(ptr).ok_or_else(|| RegoCppError::Rego(self.last_error()))?;
            let bundle = RawBundle { api: self.api, ptr };
            // SAFETY: `bundle.ptr` is the live bundle just built.
            if unsafe { (self.api.bundle_ok)(bundle.ptr.as_ptr()) } == 0 {
                return Err(RegoCppError::Rego(self.last_error()));
            }
            Ok(bundle)
        }

        pub(super) fn query_bundle(
            &self,
            bundle: &RawBundle<'_>,
            entrypoint: &str,
        ) -> Result<Output, RegoCppError> {
            let entrypoint = c_string(entrypoint)?;
            // SAFETY: a live interpreter, a live bundle it built and a NUL-terminated entrypoint;
            // the returned output (or null) is owned by `output`.
            let ptr = unsafe {
                (self.api.bundle_query_entrypoint)(
                    self.ptr.as_ptr(),
                    bundle.ptr.as_ptr(),
                    entrypoint.as_ptr(),
                )
            };
            self.output(ptr)
        }
    }

    impl RawOutput<'_> {
        fn read(&self) -> Output {
            // SAFETY: `self.ptr` is a live output; regoOutputJSON writes at most `size` bytes
            // (text and NUL) into a buffer of `size` bytes.
            unsafe {
                let ok = (self.api.output_ok)(self.ptr.as_ptr()) != 0;
                let size = (self.api.output_json_size)(self.ptr.as_ptr());
                let mut buf = vec![0u8; size.max(1) as usize];
                let text =
                    if (self.api.output_json)(self.ptr.as_ptr(), buf.as_mut_ptr().cast(), size)
                        == REGO_OK
                    {
                        from_c_buffer(buf)
                    } else {
                        "(rego-cpp could not write its output)".into()
                    };
                Output { ok, text }
            }
        }
    }

    impl Drop for RawOutput<'_> {
        fn drop(&mut self) {
            // SAFETY: the output came from regoQuery/regoBundleQueryEntrypoint and is freed
            // only here.
            unsafe { (self.api.free_output)(self.ptr.as_ptr()) }
        }
    }

    impl Drop for RawBundle<'_> {
        fn drop(&mut self) {
            // SAFETY: the bundle came from regoBuild and is freed only here.
            unsafe { (self.api.free_bundle)(self.ptr.as_ptr()) }
        }
    }

    impl Drop for Raw<'_> {
        fn drop(&mut self) {
            // SAFETY: the interpreter came from regoNew and is freed only here, after every
            // bundle and output borrowed from it (the borrow checker orders the drops).
            unsafe { (self.api.free)(self.ptr.as_ptr()) }
        }
    }
}
