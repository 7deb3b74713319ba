//! The bindings' `unsafe` for buffers: writing mask rows into a caller's
//! int32 buffer (numpy array, CPU torch tensor, array.array, memoryview), or
//! at a raw address the caller passes (the pointer entry point).
#![allow(unsafe_code)]

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// A checked, writable view of one row of an int32 bitmask buffer.
pub(crate) struct MaskRow {
    // Keeps the exporter alive and its memory pinned while we write (`None`:
    // a raw address, kept alive by the caller).
    _buf: Option<PyBuffer<i32>>,
    ptr: *mut u32,
    len: usize,
}

// SAFETY: the buffer is kept alive by `_buf`; the row is only written through
// the `&mut [u32]` handed out by `as_mut_slice`, by one thread at a time.
unsafe impl Send for MaskRow {}

/// A checked, writable int32 bitmask buffer (1-D or 2-D, C-contiguous),
/// acquired once for any number of rows.
pub(crate) struct MaskBuffer {
    buf: PyBuffer<i32>,
    rows: usize,
    width: usize,
}

impl MaskBuffer {
    /// Check `obj` (1-D or 2-D, C-contiguous, writable, int32).
    pub(crate) fn new(obj: &Bound<'_, PyAny>) -> PyResult<MaskBuffer> {
        let wrong = |err: PyErr| {
            PyTypeError::new_err(format!(
                "bitmask must be an int32 array in CPU memory (allocate it with \
                 corral.allocate_token_bitmask and move it to the device after filling): {err}"
            ))
        };
        let buf = match PyBuffer::<i32>::get(obj) {
            Ok(b) => b,
            // CPU torch tensors do not export buffers; their `.numpy()` view shares memory.
            Err(e) => match obj.getattr("numpy") {
                Ok(f) => PyBuffer::<i32>::get(&f.call0().map_err(wrong)?).map_err(wrong)?,
                Err(_) => return Err(wrong(e)),
            },
        };
        if buf.readonly() {
            return Err(PyValueError::new_err("bitmask buffer is read-only"));
        }
        if !buf.is_c_contiguous() {
            return Err(PyValueError::new_err("bitmask must be C-contiguous"));
        }
        let shape = buf.shape();
        let (rows, width) = match *shape {
            [w] => (1, w),
            [r, w] => (r, w),
            _ => {
                return Err(PyValueError::new_err(format!(
                    "bitmask must be 1-D or 2-D, got {} dimensions",
                    shape.len()
                )))
            }
        };
        Ok(MaskBuffer { buf, rows, width })
    }

    /// The buffer's first word (rows follow every `width` words).
    fn base(&self) -> *mut u32 {
        self.buf.buf_ptr().cast::<u32>()
    }

    /// The start of row `index`, checked to exist and to hold `min_words`.
    fn row_ptr(&self, index: usize, min_words: usize) -> PyResult<*mut u32> {
        if self.width < min_words {
            return Err(PyValueError::new_err(format!(
                "bitmask rows have {} words, need at least {min_words} for the vocabulary",
                self.width
            )));
        }
        if index >= self.rows {
            return Err(PyValueError::new_err(format!(
                "index {index} is out of range for a bitmask with {} rows",
                self.rows
            )));
        }
        // SAFETY: the buffer is C-contiguous with rows*width i32 elements, so the row
        // `index` lies inside it; i32 and u32 have the same size and alignment.
        Ok(unsafe { self.base().add(index * self.width) })
    }

    /// Rows `(index, min_words)`, each checked; an index may appear once
    /// only (each row is written through its own `&mut` slice).
    pub(crate) fn rows(
        &self,
        wanted: impl Iterator<Item = (usize, usize)>,
    ) -> PyResult<Vec<BufferRow<'_>>> {
        // Checked in one pass over plain integers, the errors built after:
        // per row through `row_ptr` this was ~8 ns a row, a twentieth of a
        // warm two-thread call of 64 rows.
        let mut taken = vec![false; self.rows];
        let (mut widest, mut bad, mut twice) = (0, None, None);
        let rows: Vec<BufferRow<'_>> = wanted
            .map(|(index, min_words)| {
                widest = widest.max(min_words);
                match taken.get_mut(index) {
                    Some(t) if *t => twice = twice.or(Some(index)),
                    Some(t) => *t = true,
                    None => bad = bad.or(Some(index)),
                }
                BufferRow {
                    ptr: self.base().wrapping_add(index.wrapping_mul(self.width)),
                    len: self.width,
                    _buf: std::marker::PhantomData,
                }
            })
            .collect();
        if let Some(index) = bad {
            self.row_ptr(index, widest)?;
        }
        if widest > self.width {
            self.row_ptr(0, widest)?;
        }
        if let Some(index) = twice {
            return Err(PyValueError::new_err(format!(
                "row {index} appears twice in indices"
            )));
        }
        Ok(rows)
    }
}

/// One row of a [`MaskBuffer`], distinct from every other row handed out.
pub(crate) struct BufferRow<'a> {
    ptr: *mut u32,
    len: usize,
    _buf: std::marker::PhantomData<&'a MaskBuffer>,
}

// SAFETY: the buffer outlives the row (the borrow), and no two rows of one
// `rows` call overlap, so each is written by one thread at a time.
unsafe impl Send for BufferRow<'_> {}

impl BufferRow<'_> {
    /// The row as a mutable slice.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u32] {
        // SAFETY: `ptr..ptr+len` is a row of the live, writable buffer (checked
        // in `MaskBuffer::rows`), and `&mut self` makes this the only slice of it.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl MaskRow {
    /// Check `obj` (1-D or 2-D, C-contiguous, writable, int32) and select row `index`
    /// of width at least `min_words`.
    pub(crate) fn new(obj: &Bound<'_, PyAny>, index: usize, min_words: usize) -> PyResult<MaskRow> {
        let buf = MaskBuffer::new(obj)?;
        let ptr = buf.row_ptr(index, min_words)?;
        Ok(MaskRow {
            len: buf.width,
            _buf: Some(buf.buf),
            ptr,
        })
    }

    /// A row at a raw address the caller vouches for (`tensor.data_ptr()`,
    /// `array.ctypes.data`): `words` writable int32 words in CPU memory, kept
    /// alive during the call. Only null and misaligned addresses are caught.
    pub(crate) fn from_address(
        address: usize,
        words: usize,
        min_words: usize,
    ) -> PyResult<MaskRow> {
        if address == 0 || address & (std::mem::align_of::<u32>() - 1) != 0 {
            return Err(PyValueError::new_err(format!(
                "bitmask address {address:#x} is null or not aligned to 4 bytes"
            )));
        }
        if words < min_words {
            return Err(PyValueError::new_err(format!(
                "bitmask rows have {words} words, need at least {min_words} for the vocabulary"
            )));
        }
        Ok(MaskRow {
            _buf: None,
            ptr: address as *mut u32,
            len: words,
        })
    }

    /// The row as a mutable slice.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u32] {
        // SAFETY: `ptr..ptr+len` is inside the live, writable buffer (checked in `new`),
        // and `&mut self` guarantees this is the only slice handed out.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}
