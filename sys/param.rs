// SPDX-License-Identifier: GPL-2.0

//! Integer module parameters as `loop.c` declares them: shown read-only in
//! `/sys/module/<module>/parameters/` (mode 0444), parsed by `kstrtoint`
//! at load time, refusing values below a minimum with `EINVAL` (as its
//! `hw_queue_depth` callback does), and remembering whether they were given
//! at all (as its `max_loop_specified` does).
//!
//! The kernel crate's `module!` parameters cannot do any of this: they are
//! invisible in sysfs, have no validation callback and cannot tell a value
//! given on the command line from the default. [`int_param!`] defines one
//! the way C's `module_param_cb()` does: a `kernel_param` in the `__param`
//! section, and the `parmtype`/`parm` modinfo strings `modinfo` shows.

use kernel::{
    bindings,
    ffi::{c_char, c_int},
    sync::atomic::{Atomic, Relaxed},
};

/// An `int` module parameter. sysfs reads `value` as a plain `int`
/// through `kernel_param.arg` (`param_get_int`); `Atomic<i32>` has the
/// layout of `i32`.
pub(crate) struct IntParam {
    value: Atomic<i32>,
    min: c_int,
    given: Atomic<bool>,
}

impl IntParam {
    /// A parameter with value `default` that refuses values below `min`.
    pub(crate) const fn new(default: c_int, min: c_int) -> Self {
        IntParam {
            value: Atomic::new(default),
            min,
            given: Atomic::new(false),
        }
    }

    /// The value.
    pub(crate) fn get(&self) -> i32 {
        self.value.load(Relaxed)
    }

    /// Replaces the value shown in sysfs, as `loop_init()` rounds
    /// `max_part` up to what it uses.
    pub(crate) fn set(&self, v: i32) {
        self.value.store(v, Relaxed);
    }

    /// Whether a value was given at load time.
    pub(crate) fn given(&self) -> bool {
        self.given.load(Relaxed)
    }

    /// Where `kernel_param.arg` points: the `int` itself.
    pub(crate) const fn arg(&self) -> *mut core::ffi::c_void {
        self.value.as_ptr().cast()
    }
}

/// `kernel_param_ops.set` of an [`IntParam`].
///
/// # Safety
///
/// Called by the module loader with a NUL-terminated `val` and a `kp`
/// whose `arg` points to an [`IntParam`].
unsafe extern "C" fn set_int(val: *const c_char, kp: *const bindings::kernel_param) -> c_int {
    let mut v: c_int = 0;
    // `int` parameters need a value.
    if val.is_null() {
        return -(bindings::EINVAL as c_int);
    }
    // SAFETY: `val` is NUL-terminated (the loader's guarantee) and not
    // NULL (checked); `v` is writable.
    let ret = unsafe { bindings::kstrtoint(val, 0, &mut v) };
    if ret < 0 {
        return ret;
    }
    // SAFETY: `arg` points to the `value` field of an `IntParam` (see
    // `int_param!`), which is a static.
    let p = unsafe {
        &*(*kp)
            .__bindgen_anon_1
            .arg
            .cast::<u8>()
            .sub(core::mem::offset_of!(IntParam, value))
            .cast::<IntParam>()
    };
    if v < p.min {
        return -(bindings::EINVAL as c_int);
    }
    p.value.store(v, Relaxed);
    p.given.store(true, Relaxed);
    0
}

/// The operations of every [`IntParam`]: `set_int`, and the kernel's own
/// `param_get_int` for reading it in sysfs.
#[repr(transparent)]
pub(crate) struct Ops(pub(crate) bindings::kernel_param_ops);

// SAFETY: immutable.
unsafe impl Sync for Ops {}

pub(crate) static INT_OPS: Ops = Ops(bindings::kernel_param_ops {
    flags: 0,
    set: Some(set_int),
    get: Some(bindings::param_get_int),
    free: None,
});

/// A `kernel_param` in the `__param` section.
#[repr(transparent)]
pub(crate) struct Param(pub(crate) bindings::kernel_param);

// SAFETY: read by the module loader and sysfs only.
unsafe impl Sync for Param {}

/// The `THIS_MODULE` pointer in a constant expression.
pub(crate) const fn this_module() -> *mut bindings::module {
    kernel::module::this_module::<crate::LocalModule>().as_ptr()
}

/// Defines `static $name: IntParam`, an `int` module parameter shown with
/// mode 0444, default `$default`, minimum `$min` and description `$desc`.
macro_rules! int_param {
    ($name:ident, $default:expr, $min:expr, $desc:literal) => {
        #[allow(non_upper_case_globals)]
        pub(crate) static $name: $crate::sys::param::IntParam =
            $crate::sys::param::IntParam::new($default, $min);

        const _: () = {
            #[link_section = "__param"]
            #[used(compiler)]
            static PARAM: $crate::sys::param::Param =
                $crate::sys::param::Param(::kernel::bindings::kernel_param {
                    name: concat!(stringify!($name), "\0").as_ptr(),
                    mod_: $crate::sys::param::this_module(),
                    ops: &$crate::sys::param::INT_OPS.0,
                    perm: 0o444,
                    level: -1,
                    flags: 0,
                    __bindgen_anon_1: ::kernel::bindings::kernel_param__bindgen_ty_1 {
                        arg: $name.arg(),
                    },
                });

            const PARMTYPE: &str = concat!("parmtype=", stringify!($name), ":int\0");
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static MODINFO_TYPE: [u8; PARMTYPE.len()] = {
                let mut a = [0u8; PARMTYPE.len()];
                let b = PARMTYPE.as_bytes();
                let mut i = 0;
                while i < b.len() {
                    a[i] = b[i];
                    i += 1;
                }
                a
            };

            const PARM: &str = concat!("parm=", stringify!($name), ":", $desc, "\0");
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static MODINFO_DESC: [u8; PARM.len()] = {
                let mut a = [0u8; PARM.len()];
                let b = PARM.as_bytes();
                let mut i = 0;
                while i < b.len() {
                    a[i] = b[i];
                    i += 1;
                }
                a
            };
        };
    };
}
pub(crate) use int_param;
