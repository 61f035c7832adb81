//! The CPU backend as hafrm builds it: burn-flex with the patches in `vendor/burn-flex`
//! (its PATCHED.md). A new tensor is allocated once, not copied after it is zeroed; a matrix
//! product's output is not zeroed at all, since gemm writes all of it; and the element-wise maps
//! that now run on all threads and vectorise (GELU and its gradient, with its own exponential,
//! on a tensor above the 64K elements where they fan out) give the values of the formula, as do
//! the exponential and softmax, which share that exponential over f32's whole range; and
//! element-wise arithmetic, threaded from 512K elements, is exact at every element.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Tensor, TensorData};
use hafrm::device::cpu_device;

/// Counts the bytes each thread asks for, so that a test sees its own allocations only.
struct CountingAllocator;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
    static ZEROED: Cell<usize> = const { Cell::new(0) };
}

fn note(bytes: usize) {
    // `try_with`: a thread being torn down may still allocate.
    let _ = ALLOCATED.try_with(|allocated| allocated.set(allocated.get() + bytes));
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        let _ = ZEROED.try_with(|zeroed| zeroed.set(zeroed.get() + layout.size()));
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: CountingAllocator = CountingAllocator;

/// Bytes this thread allocated while running `work`.
fn allocated_by<T>(work: impl FnOnce() -> T) -> (usize, T) {
    let before = ALLOCATED.with(Cell::get);
    let out = work();
    (ALLOCATED.with(Cell::get) - before, out)
}

/// Bytes this thread asked to be zeroed while running `work`.
fn zeroed_by<T>(work: impl FnOnce() -> T) -> (usize, T) {
    let before = ZEROED.with(Cell::get);
    let out = work();
    (ZEROED.with(Cell::get) - before, out)
}

#[test]
fn a_new_tensor_is_allocated_once_not_copied_after_it_is_zeroed() {
    let device = cpu_device();
    let elements = 512 * 512;
    let tensor_bytes = elements * size_of::<f32>();
    // Warm up whatever the backend sets up once.
    let _ = Tensor::<2>::zeros([8, 8], &device).into_data();

    let (zeros_bytes, zeros) = allocated_by(|| Tensor::<2>::zeros([512, 512], &device));
    // Unpatched, the zeros were made as bytes and copied into a 16-aligned allocation: 2x.
    assert!(zeros_bytes >= tensor_bytes && zeros_bytes < tensor_bytes + tensor_bytes / 4, "zeros of {tensor_bytes} bytes allocated {zeros_bytes}");

    // A matrix product's output is such a new tensor, written by gemm, which packs its operands
    // besides (about a third of the output here); unpatched, over twice the output.
    let a = Tensor::<2>::ones([512, 64], &device);
    let b = Tensor::<2>::ones([64, 512], &device);
    let (product_bytes, product) = allocated_by(|| a.matmul(b));
    assert!(product_bytes < tensor_bytes * 7 / 4, "a product of {tensor_bytes} bytes allocated {product_bytes}");
    let values = product.add(zeros).into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(values.len(), elements);
    assert!(values.iter().all(|&v| v == 64.0));
}

#[test]
fn a_matrix_product_is_written_by_gemm_without_zeroing_its_output_first() {
    let device = cpu_device();
    let _ = Tensor::<2>::zeros([8, 8], &device).into_data();
    // Entries that differ, so that an element gemm left unwritten (garbage, not zero) shows.
    let ramp = |n: usize, scale: f32| (0..n).map(|i| ((i % 17) as f32 - 8.0) * scale).collect::<Vec<_>>();
    let (m, k, n) = (300, 48, 260);
    let (a, b) = (ramp(m * k, 0.25), ramp(k * n, 0.5));
    let expected = |batch_a: &[f32], batch_b: &[f32]| {
        let mut out = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|l| batch_a[i * k + l] as f64 * batch_b[l * n + j] as f64).sum();
            }
        }
        out
    };
    let lhs = Tensor::<2>::from_data(TensorData::new(a.clone(), [m, k]), &device);
    let rhs = Tensor::<2>::from_data(TensorData::new(b.clone(), [k, n]), &device);
    let (zeroed, product) = zeroed_by(|| lhs.clone().matmul(rhs.clone()));
    // Unpatched, the output (m x n x 4 bytes) was zeroed first.
    assert!(zeroed < m * n * size_of::<f32>() / 2, "a product of {} bytes asked {zeroed} zeroed", m * n * 4);
    let values = product.into_data().try_to_vec::<f32>().unwrap();
    for (i, (&got, want)) in values.iter().zip(expected(&a, &b)).enumerate() {
        assert!((got as f64 - want).abs() < 1e-3, "product element {i}: {got}, not {want}");
    }

    // A batched product (the attention's), each batch's matrix written by its own gemm.
    let batches = 3;
    let lhs3 = Tensor::<3>::from_data(TensorData::new(ramp(batches * m * k, 0.125), [batches, m, k]), &device);
    let rhs3 = Tensor::<3>::from_data(TensorData::new(ramp(batches * k * n, 0.375), [batches, k, n]), &device);
    let (zeroed, product) = zeroed_by(|| lhs3.clone().matmul(rhs3.clone()));
    assert!(zeroed < batches * m * n * size_of::<f32>() / 2, "a batched product asked {zeroed} bytes zeroed");
    let values = product.into_data().try_to_vec::<f32>().unwrap();
    let (all_a, all_b) = (ramp(batches * m * k, 0.125), ramp(batches * k * n, 0.375));
    for batch in 0..batches {
        let want = expected(&all_a[batch * m * k..(batch + 1) * m * k], &all_b[batch * k * n..(batch + 1) * k * n]);
        for (i, (&got, want)) in values[batch * m * n..(batch + 1) * m * n].iter().zip(want).enumerate() {
            assert!((got as f64 - want).abs() < 1e-3, "batch {batch}, element {i}: {got}, not {want}");
        }
    }
}

/// erf by its Taylor series in f64 (exact to about 1e-12 for |z| <= 3): a value independent of
/// the backend's libm.
fn erf(z: f64) -> f64 {
    let (mut term, mut sum) = (z, z);
    for n in 1..80 {
        term *= -z * z / n as f64;
        sum += term / (2 * n + 1) as f64;
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

#[test]
fn gelu_and_its_gradient_over_many_elements_are_the_formula_at_every_element() {
    let device = cpu_device().autodiff();
    // 3 x 40,000 elements in [-4, 4], above the parallel threshold, and output gradients that
    // differ at each element, so that a value computed for the wrong element shows.
    let (rows, cols) = (3, 40_000);
    let xs: Vec<f32> = (0..rows * cols).map(|i| -4.0 + 8.0 * ((i * 7919) % (rows * cols)) as f32 / (rows * cols) as f32).collect();
    let weights: Vec<f32> = (0..rows * cols).map(|i| 0.5 + (i % 13) as f32 / 13.0).collect();
    let x = Tensor::<2>::from_data(TensorData::new(xs.clone(), [rows, cols]), &device).require_grad();
    let w = Tensor::<2>::from_data(TensorData::new(weights.clone(), [rows, cols]), &device);
    let y = gelu(x.clone());
    let grads = (y.clone() * w).sum().backward();
    let forward = y.into_data().try_to_vec::<f32>().unwrap();
    let backward = x.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap();

    let cdf = |x: f64| 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2));
    let pdf = |x: f64| (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    for i in 0..rows * cols {
        let x = xs[i] as f64;
        let expected = x * cdf(x);
        assert!((forward[i] as f64 - expected).abs() < 2e-6, "gelu({x}) = {} at {i}, not {expected}", forward[i]);
        let expected = weights[i] as f64 * (cdf(x) + x * pdf(x));
        assert!((backward[i] as f64 - expected).abs() < 4e-6, "gelu'({x}) x {} = {} at {i}, not {expected}", weights[i], backward[i]);
    }
}

#[test]
fn gelu_in_its_tails_is_zero_below_and_the_identity_above_and_keeps_nan() {
    let device = cpu_device().autodiff();
    // Far below the mean the Gaussian underflows f32 (to subnormals, then 0).
    let xs = [-1000.0f32, -60.0, -20.0, -13.5, -9.0, 9.0, 13.5, 20.0, 60.0, 1000.0, f32::NAN];
    let x = Tensor::<1>::from_data(TensorData::new(xs.to_vec(), [xs.len()]), &device).require_grad();
    let y = gelu(x.clone());
    let grads = y.clone().sum().backward();
    let forward = y.into_data().try_to_vec::<f32>().unwrap();
    let backward = x.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap();
    for (i, &x) in xs.iter().enumerate() {
        if x.is_nan() {
            assert!(forward[i].is_nan() && backward[i].is_nan(), "gelu(NaN) = {}, gradient {}", forward[i], backward[i]);
        } else if x < 0.0 {
            assert!(forward[i].abs() < 1e-15 && backward[i].abs() < 1e-15, "gelu({x}) = {}, gradient {}", forward[i], backward[i]);
        } else {
            assert!(forward[i] == x && backward[i] == 1.0, "gelu({x}) = {}, gradient {}", forward[i], backward[i]);
        }
    }
}

#[test]
fn the_exponential_is_e_to_the_x_over_all_of_f32_with_its_subnormals_infinities_and_nan() {
    let device = cpu_device();
    // 2M points over [-110, 95] (above the parallel threshold), past both ends of the range where
    // e^x is a normal f32, plus the values where a kernel usually goes wrong.
    let points = 2_000_000;
    let mut xs: Vec<f32> = (0..points).map(|i| -110.0 + 205.0 * i as f32 / points as f32).collect();
    xs.extend([0.0, -0.0, 1e-30, -1e-30, 88.7, 88.73, 89.0, 1e30, -87.4, -103.9, -104.0, -1e30, f32::INFINITY, f32::NEG_INFINITY, f32::NAN]);
    let n = xs.len();
    let got = Tensor::<1>::from_data(TensorData::new(xs.clone(), [n]), &device).exp().into_data().try_to_vec::<f32>().unwrap();
    let smallest_subnormal = f32::from_bits(1) as f64;
    let mut worst_relative = 0f64;
    for (&x, &got) in xs.iter().zip(&got) {
        let want = (x as f64).exp();
        if x.is_nan() {
            assert!(got.is_nan(), "exp(NaN) = {got}");
        } else if want > f32::MAX as f64 * 1.000_001 {
            assert_eq!(got, f32::INFINITY, "exp({x}) overflows f32, not {got}");
        } else if want < f32::MIN_POSITIVE as f64 {
            // Subnormal: within one of its steps (the polynomial's error is far below it).
            assert!((got as f64 - want).abs() <= smallest_subnormal, "exp({x}) = {got:e}, not {want:e}");
            if want < smallest_subnormal / 2.0 {
                assert_eq!(got, 0.0, "exp({x}) rounds to 0, not {got:e}");
            }
        } else if want < f32::MAX as f64 * 0.999_999 {
            let relative = (got as f64 - want).abs() / want;
            worst_relative = worst_relative.max(relative);
            assert!(relative < 2e-7, "exp({x}) = {got:e}, not {want:e} (relative error {relative:e})");
        }
    }
    assert_eq!(got[n - 3..n - 1], [f32::INFINITY, 0.0], "exp of the infinities");
    assert!(worst_relative > 0.0, "compared no normal values");
}

#[test]
fn softmax_is_the_formula_with_masked_entries_exactly_zero() {
    let device = cpu_device();
    // Rows of 37 (not a multiple of the 16 lanes) and 1,000, with entries masked as the engine's
    // attention masks them (a large negative bias) and as -inf, which must come out exactly 0.
    for row_len in [37usize, 1000] {
        let rows = 70;
        let xs: Vec<f32> = (0..rows * row_len)
            .map(|i| match (i % row_len) % 11 {
                3 => f32::NEG_INFINITY,
                7 => -1e9,
                _ => ((i * 7919) % 1000) as f32 / 50.0 - 10.0,
            })
            .collect();
        let probs = softmax(Tensor::<2>::from_data(TensorData::new(xs.clone(), [rows, row_len]), &device), 1).into_data().try_to_vec::<f32>().unwrap();
        for (row, (x, p)) in xs.chunks(row_len).zip(probs.chunks(row_len)).enumerate() {
            let max = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
            let sum: f64 = x.iter().map(|&v| (v as f64 - max).exp()).sum();
            for (j, (&v, &got)) in x.iter().zip(p).enumerate() {
                let want = (v as f64 - max).exp() / sum;
                if v < -1e8 {
                    assert_eq!(got, 0.0, "row {row} of {row_len}, masked entry {j}: {got:e}");
                } else {
                    assert!((got as f64 - want).abs() <= 1e-6 * want + 1e-12, "row {row} of {row_len}, entry {j}: {got:e}, not {want:e}");
                }
            }
        }
    }
}

#[test]
fn element_wise_arithmetic_spread_over_threads_is_exact_at_every_element() {
    let device = cpu_device();
    // Sizes about the 512K elements from which add, sub, mul and div of contiguous tensors run
    // in chunks of 64K on rayon's pool, one with a tail shorter than a SIMD register. The left
    // operand is still held for the second half, so the result is written into the right
    // operand's buffer, with the reversed kernels for sub and div.
    for len in [512 * 1024 - 1, 512 * 1024, 3 * 256 * 1024 + 5] {
        let xs: Vec<f32> = (0..len).map(|i| ((i * 7919) % 10_007) as f32 / 97.0 - 50.0).collect();
        let ys: Vec<f32> = (0..len).map(|i| ((i * 104_729) % 9_973) as f32 / 89.0 + 0.25).collect();
        let x = || Tensor::<1>::from_data(TensorData::new(xs.clone(), [len]), &device);
        let y = || Tensor::<1>::from_data(TensorData::new(ys.clone(), [len]), &device);
        let ops: [(&str, fn(f32, f32) -> f32, Box<dyn Fn(Tensor<1>, Tensor<1>) -> Tensor<1>>); 4] = [
            ("add", |a, b| a + b, Box::new(|a, b| a + b)),
            ("sub", |a, b| a - b, Box::new(|a, b| a - b)),
            ("mul", |a, b| a * b, Box::new(|a, b| a * b)),
            ("div", |a, b| a / b, Box::new(|a, b| a / b)),
        ];
        for (name, scalar, op) in &ops {
            let held = x();
            for (into, got) in [("the left operand", op(x(), y())), ("the right operand", op(held.clone(), y()))] {
                let got = got.into_data().try_to_vec::<f32>().unwrap();
                for (i, ((&a, &b), &got)) in xs.iter().zip(&ys).zip(&got).enumerate() {
                    assert_eq!(got.to_bits(), scalar(a, b).to_bits(), "{name} of {len} elements written into {into}, element {i}: {got}, not {}", scalar(a, b));
                }
            }
            drop(held);
        }
    }
}
