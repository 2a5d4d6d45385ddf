"""NVFP4 / FP8 arithmetic against an independent float64 reference written with plain numpy and enumeration.

The reference never uses torch's float8 cast or omnicheck's rounding: it enumerates every e4m3 and e2m1 value and
picks the nearest (ties to the even code), so a shared misunderstanding of torch would not hide.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from omnicheck.formats import fp4

# --- the float64 reference ---


def e4m3_grid() -> np.ndarray:
    """All non-negative finite float8 e4m3fn values, ordered by code (index parity = code parity)."""
    values = []
    for exponent in range(16):
        for mantissa in range(8):
            if exponent == 15 and mantissa == 7:
                continue  # NaN
            if exponent == 0:
                values.append(mantissa / 8 * 2.0**-6)
            else:
                values.append((1 + mantissa / 8) * 2.0 ** (exponent - 7))
    return np.array(values, dtype=np.float64)


E4M3 = e4m3_grid()
E2M1 = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6], dtype=np.float64)


def nearest_on_grid(x: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Nearest grid value for |x| (saturating at the top), ties to the even index, sign restored."""
    a = np.minimum(np.abs(x), grid[-1])
    dist = np.abs(a[..., None] - grid)
    best = dist.min(-1, keepdims=True)
    ties = np.isclose(dist, best, rtol=0, atol=1e-300) | (dist == best)
    index = np.where(ties, np.arange(len(grid)), 10**9)
    even = np.where(ties & (np.arange(len(grid)) % 2 == 0), np.arange(len(grid)), 10**9)
    chosen = np.where(even.min(-1) < 10**9, even.min(-1), index.min(-1))
    return np.sign(x) * grid[chosen]


def ref_unpack(packed: np.ndarray) -> np.ndarray:
    out = np.empty(packed.shape[:-1] + (packed.shape[-1] * 2,), dtype=np.float64)
    for j in range(packed.shape[-1]):
        for k, nibble in enumerate((packed[..., j] & 0xF, packed[..., j] >> 4)):
            magnitude = E2M1[nibble & 0x7]
            out[..., 2 * j + k] = np.where(nibble & 0x8, -magnitude, magnitude)
    return out


def ref_fake_nvfp4(x: np.ndarray, s2: float) -> np.ndarray:
    blocks = x.reshape(x.shape[:-1] + (-1, 16))
    amax = np.abs(blocks).max(-1, keepdims=True)
    scale = nearest_on_grid(amax / 6.0 / s2, E4M3) * s2
    safe = np.where(scale > 0, scale, 1.0)
    q = nearest_on_grid(blocks / safe, E2M1) * scale
    return q.reshape(x.shape)


def ref_fp8_static(x: np.ndarray, s: float) -> np.ndarray:
    return nearest_on_grid(x / s, E4M3) * s


# --- tests ---


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def test_unpack_matches_reference_for_every_byte():
    packed = np.arange(256, dtype=np.uint8).reshape(16, 16)
    got = fp4.unpack_e2m1(torch.from_numpy(packed)).double().numpy()
    np.testing.assert_array_equal(got, ref_unpack(packed))


def test_low_nibble_comes_first():
    # 0x72: low nibble 2 (1.0) then high nibble 7 (6.0)
    got = fp4.unpack_e2m1(torch.tensor([[0x72]], dtype=torch.uint8))
    assert got.tolist() == [[1.0, 6.0]]


def test_pack_unpack_round_trip(rng):
    values = rng.choice(np.concatenate([E2M1, -E2M1[1:]]), size=(8, 32))
    packed = fp4.pack_e2m1(torch.from_numpy(values).float())
    np.testing.assert_array_equal(fp4.unpack_e2m1(packed).double().numpy(), values)


def test_e2m1_rounding_ties_to_even():
    ties = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, -0.75, -5.0, 7.0])
    expected = nearest_on_grid(ties.double().numpy(), E2M1)
    np.testing.assert_array_equal(fp4.round_to_e2m1(ties).double().numpy(), expected)
    assert fp4.round_to_e2m1(ties).tolist() == [0.0, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0, -1.0, -4.0, 6.0]


def test_e4m3_rounding_matches_enumeration(rng):
    x = np.concatenate([rng.lognormal(0, 4, 4000), [448.0, 500.0, 2.0**-9, 2.0**-10, 3 * 2.0**-11, 0.0]])
    np.testing.assert_array_equal(fp4.round_to_e4m3(torch.from_numpy(x)).double().numpy(), nearest_on_grid(x, E4M3))


@pytest.mark.parametrize("spread", [0.01, 1.0, 300.0])
def test_fake_nvfp4_matches_float64_reference(rng, spread):
    x = rng.standard_normal((64, 128)) * spread
    x[3, :16] = 0.0  # an all-zero block
    x[5, 16:32] *= 1e-6  # a block whose scale underflows
    s2 = float(np.abs(x).max() / (6 * 448) / 3)  # a "calibration" amax one third of the data's: forces clipping
    got = fp4.fake_quantize_nvfp4(torch.from_numpy(x).float(), s2).double().numpy()
    want = ref_fake_nvfp4(x.astype(np.float32).astype(np.float64), s2)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-30)
    assert np.abs(got).max() <= 6 * 448 * s2 * (1 + 1e-6)


def test_dequantize_nvfp4_matches_reference(rng):
    packed = rng.integers(0, 256, size=(32, 64), dtype=np.uint8)
    scale = nearest_on_grid(rng.uniform(0.01, 400, size=(32, 8)), E4M3)
    s2 = 3.1e-5
    got = fp4.dequantize_nvfp4(
        torch.from_numpy(packed), torch.from_numpy(scale).float().to(torch.float8_e4m3fn), torch.tensor(s2)
    ).double().numpy()
    want = ref_unpack(packed) * np.repeat(scale, 16, axis=1) * np.float64(np.float32(s2))
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_fp8_static_and_block_dequant_match_reference(rng):
    x = rng.standard_normal((16, 256)) * 5
    s = 0.01
    got = fp4.fake_quantize_fp8_static(torch.from_numpy(x).float(), s).double().numpy()
    np.testing.assert_allclose(got, ref_fp8_static(x.astype(np.float32), np.float32(s)), rtol=1e-6)
    weight = nearest_on_grid(rng.standard_normal((256, 256)) * 50, E4M3)
    block_scale = rng.uniform(0.001, 0.1, size=(2, 2))
    got = fp4.dequantize_fp8(torch.from_numpy(weight).float().to(torch.float8_e4m3fn), torch.from_numpy(block_scale))
    want = weight * np.kron(block_scale, np.ones((128, 128)))
    np.testing.assert_allclose(got.double().numpy(), want, rtol=1e-6)


def test_fake_nvfp4_keeps_dtype_and_rejects_ragged_rows():
    x = torch.randn(2, 3, 32, dtype=torch.bfloat16)
    assert fp4.fake_quantize_nvfp4(x, 0.001).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="multiple of 16"):
        fp4.fake_quantize_nvfp4(torch.randn(4, 20), 0.001)
