"""Headline claims of toy T1 (DESIGN §1.3–1.4) with many particles, against closed forms:
hard clipping merges the critic into one atom that then runs on the circle H = c², and
PenaltyClip holds particles past a wall at c + |v|/β."""

import numpy as np
import pytest
from scipy import integrate

import gandyn as gd

C = 0.5
SMALL = {"n_gen": 16, "n_critic": 32, "quadrature": 8, "n_snapshots": 2}


def merge_time(lam, y0, omega0, c):
    """Time the last critic particle reaches −c in T1's projected flow (independent of
    gandyn). With y > 0 every free particle moves with −λ y: free ones translate rigidly
    by a shift ``s`` and stick at −c in the order of their initial positions. With ``k``
    stuck, ``ẏ = ω̄ = (−k c + Σ_free ω_j(0) + (M − k) s)/M`` and ``ṡ = −λ y``; each piece is
    integrated to the next particle's contact ``s = −c − ω_(k)(0)``."""
    omega0 = np.sort(omega0)
    m = omega0.size
    t, y, s = 0.0, y0, 0.0
    for k in range(m):
        free_sum = omega0[k:].sum()

        def field(_, u, k=k, free_sum=free_sum):
            return [(-k * c + free_sum + (m - k) * u[1]) / m, -lam * u[0]]

        def contact(_, u, k=k):
            return u[1] + c + omega0[k]

        contact.terminal, contact.direction = True, -1
        if contact(t, [y, s]) <= 0:  # ties: particles that start at one position
            continue
        sol = integrate.solve_ivp(
            field, (t, t + 50.0), [y, s], events=contact, rtol=1e-12, atol=1e-14
        )
        assert sol.status == 1  # the contact happened
        t, (y, s) = sol.t_events[0][0], sol.y_events[0][0]
        assert y > 0  # the field still points at −c: the reduction above holds
    return t


@pytest.mark.parametrize("lam", [1.0, 4.0])
def test_hard_clip_merges_the_critic_into_one_atom_that_runs_on_the_circle_h_c2(lam):
    dt, t1 = 0.01, 40.0
    r = gd.run_experiment("toy-shift-linear", lam=lam, c=C, dt=dt, t1=t1, **SMALL)
    s, tr = r.summary, r.trajectory
    assert s["status"] == "ok"
    ts, width = tr["ts"], tr["diag_critic_support_width"]
    omega0 = tr["snapshot_critic"][0, :, 0]
    y0 = tr["diag_generated_mean"][0, 0]  # the data mean is 0
    assert width[0] == pytest.approx(0.2 * (1 - 1 / SMALL["n_critic"]))  # quantiles of U[±0.1]
    assert s["invariant_initial"] == pytest.approx(lam * y0**2 + omega0.mean() ** 2)
    assert s["invariant_initial"] > 3 * C**2  # a large amplitude: the walls are reached

    # collapse to one atom: every particle hits −c before y changes sign; HardClip sets
    # them to −c exactly at the end of the step of contact, so the first save with width 0
    # is that step's end, within one step after the exact merge time
    merged = np.flatnonzero(width <= 1e-12)
    exact = merge_time(lam, y0, omega0, C)
    assert exact <= ts[merged[0]] <= exact + dt + 1e-9
    assert np.array_equal(merged, np.arange(merged[0], ts.size))  # and stays one atom
    assert s["critic_support_width_final"] <= 1e-12

    # the atom leaves −c where y = 0 (H = c²), runs the free oscillation, touches +c with
    # y = 0 and so on: H = c² up to the leaving step. An atom on the wall leaves in the
    # first step whose unprojected end is inside, i.e. from |y_n| ≤ c dt/2 (ω on the free
    # orbit from (y_n, ±c) returns below c iff |y_n| ≤ c dt/2 + O(dt²)), and the free
    # steps keep H = λ y_n² + c²: c² ≤ H ≤ c² (1 + λ dt²/4)
    late = ts >= t1 / 2
    h = tr["diag_invariant"][late]
    assert np.all(h >= C**2 * (1 - 1e-9)) and np.all(h <= C**2 * (1 + lam * dt**2 / 4))
    assert C**2 <= s["invariant_final"] <= C**2 * (1 + lam * dt**2 / 4)

    # the period of the free oscillation (that orbit touches the walls, stays on them for
    # at most dt/2 and keeps the phase of the free motion). ``period`` spaces the crossings
    # of ω̄ = 0 linearly interpolated between saves: each is off by at most
    # (dt²/8)|ω̄''| / |ω̄'| ≤ dt² √λ / 8, so the mean spacing by at most dt² √λ / 4
    free = 2 * np.pi / np.sqrt(lam)
    assert s["period_free"] == pytest.approx(free, rel=1e-15)
    assert abs(s["period"] - free) <= dt**2 * np.sqrt(lam) / 4
    # (y, ω̄) = (c/√λ sin, c cos): closing the orbit one period back interpolates linearly
    # at t1 − period, off by (dt²/8)|(y'', ω̄'')| ≤ (dt²/8) c √(λ + λ²), plus the speed
    # |(ω̄, −λ y)| ≤ c max(1, √λ) times the period's error
    bound = dt**2 / 8 * C * np.sqrt(lam + lam**2) + C * max(1, np.sqrt(lam)) * abs(
        s["period"] - free
    )
    assert s["orbit_closure_error"] <= bound


@pytest.mark.parametrize("beta", [20.0, 80.0])
def test_penalty_clip_holds_particles_past_the_wall_at_c_plus_v_over_beta(beta):
    lam, dt = 1.0, 0.005  # beta dt ≤ 0.4, far below tsit5's stability bound
    r = gd.run_experiment(
        "toy-shift-linear", clip="penalty", beta=beta, lam=lam, c=C, dt=dt, t1=2.0, **SMALL
    )
    assert r.summary["status"] == "ok"
    tr = r.trajectory
    ts, wall = tr["ts"], tr["diag_wall_fraction"]
    y, omega_bar = tr["diag_generated_mean"][:, 0], tr["diag_critic_mean"][:, 0]
    top = tr["diag_critic_max_abs"]
    # With y > 0 all particles pass −c, where e = ω + c obeys ė = v − β e, v = −λ y. Off
    # the transient e^{−β(t − t_contact)}: e = v/β − v̇/β² + v̈/β³ − …, with v̇ = −λ ω̄ and
    # v̈ = −λ dω̄/dt = −λ ė ≈ λ² ω̄/β, so
    # |ω| = c + |v|/β + λ|ω̄|/β² (1 + λ/β² + O(λ²/β⁴))
    on_wall = np.flatnonzero(wall == 1.0)
    assert on_wall.size and np.all(np.diff(on_wall) == 1)
    settled = (ts >= ts[on_wall[0]] + 15 / beta) & (wall == 1.0) & (y > 0.2)
    assert settled.sum() > 50
    v = lam * y[settled]
    first_order = C + v / beta
    assert np.all(top[settled] > first_order)  # past the wall, beyond c + |v|/β
    neglected = lam * np.abs(omega_bar[settled]) / beta**2  # v changes over the time 1/β
    assert np.all(neglected < 0.2 * v / beta)  # c + |v|/β is the leading term
    np.testing.assert_allclose(top[settled] - first_order, neglected, rtol=2 * lam / beta**2)
    # the approach runs at rate β: two particles past the wall obey one linear ODE, so their
    # gap decays like e^{−β(t − t_all)} from at most sup|v|/β when the last one arrives
    # (t_all: the last contact, at or before the first save with every particle past −c)
    width = tr["diag_critic_support_width"]
    past = ts >= ts[on_wall[0]]
    gap = lam * y.max() / beta * np.exp(-beta * (ts[past] - ts[on_wall[0]]))
    assert np.all(width[past] <= gap + 8 * np.finfo(float).eps * C)  # + round-off of |ω|
    # the measured rate: tsit5 damps a step by R(−β dt) = e^{−β dt} (1 + O((β dt)⁶/6!)),
    # a rate error below 1e-5 β at β dt ≤ 0.4 (until the gap is lost in round-off)
    fit = past & (width > 1e-12)
    assert fit.sum() > 10
    rate = -np.polyfit(ts[fit], np.log(width[fit]), 1)[0]
    assert rate == pytest.approx(beta, rel=1e-3)
