import torch

from evolora.reso import sedenion as sd


def rand(n: int, dim: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_unit_is_two_sided_identity():
    x = rand(5)
    e0 = sd.unit().double()
    assert torch.allclose(sd.multiply(e0, x), x)
    assert torch.allclose(sd.multiply(x, e0), x)


def test_x_times_conjugate_is_squared_norm():
    x = rand(5)
    prod = sd.multiply(x, sd.conjugate(x))
    expected = torch.zeros_like(x)
    expected[:, 0] = (x**2).sum(-1)
    assert torch.allclose(prod, expected, atol=1e-10)


def test_norm_is_multiplicative_on_octonions_but_not_on_sedenions():
    a, b = rand(20, seed=1), rand(20, seed=2)
    a8, b8 = a.clone(), b.clone()
    a8[:, 8:] = 0
    b8[:, 8:] = 0
    octo = sd.multiply(a8, b8).norm(dim=-1)
    assert torch.allclose(octo, a8.norm(dim=-1) * b8.norm(dim=-1))
    full = sd.multiply(a, b).norm(dim=-1)
    assert not torch.allclose(full, a.norm(dim=-1) * b.norm(dim=-1), rtol=1e-3)


def test_sedenions_have_zero_divisors():
    e = [sd.basis(i).double() for i in range(16)]
    # (e1 + e10)(e4 - e15) = 0 in this Cayley-Dickson convention; neither factor is zero.
    left, right = e[1] + e[10], e[4] - e[15]
    assert torch.allclose(sd.multiply(left, right), torch.zeros(16).double())
    assert left.norm() > 0 and right.norm() > 0
    # ... while octonions have none: the same pattern inside the first 8 axes is not zero.
    assert sd.multiply(e[1] + e[2], e[4] - e[7]).norm() > 0


def test_product_is_not_associative_on_a_known_triple():
    e1, e2, e4 = sd.basis(1), sd.basis(2), sd.basis(4)
    left = sd.multiply(sd.multiply(e1, e2), e4)
    right = sd.multiply(e1, sd.multiply(e2, e4))
    assert torch.allclose(left, -right)  # octonion units anti-associate


def test_quaternion_subalgebra_is_associative_and_e1e2_is_e3():
    assert torch.allclose(sd.multiply(sd.basis(1), sd.basis(2)).abs(), sd.basis(3))
    a, b, c = (rand(4, seed=s) for s in (3, 4, 5))
    for x in (a, b, c):
        x[:, 4:] = 0
    left = sd.multiply(sd.multiply(a, b), c)
    assert torch.allclose(left, sd.multiply(a, sd.multiply(b, c)))


def test_the_product_matches_the_recursive_definition_and_its_gradient_is_exact():
    x = rand(3, seed=4).requires_grad_()
    y = rand(3, seed=5).requires_grad_()
    expected = torch.stack([torch.as_tensor(sd._cd_product(a.detach().numpy(), b.detach().numpy()))
                            for a, b in zip(x, y, strict=True)])
    assert torch.allclose(sd.multiply(x, y), expected, atol=1e-12)
    assert torch.autograd.gradcheck(sd.multiply, (x, y))
