//! The CPU backend as hafrm builds it: burn-flex with the patches in `vendor/burn-flex`
//! (its PATCHED.md). A new tensor is allocated once, not copied after it is zeroed; and the
//! element-wise maps that now run on all threads (GELU and its gradient, on a tensor above the
//! 64K elements where they fan out) give the values of the formula.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use burn::tensor::activation::gelu;
use burn::tensor::{Tensor, TensorData};
use hafrm::device::cpu_device;

/// Counts the bytes each thread asks for, so that a test sees its own allocations only.
struct CountingAllocator;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
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
    let values = product.add(zeros).into_data().to_vec::<f32>().unwrap();
    assert_eq!(values.len(), elements);
    assert!(values.iter().all(|&v| v == 64.0));
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
    let forward = y.into_data().to_vec::<f32>().unwrap();
    let backward = x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();

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
