# Linear probe (methods.md sec. 5b; methods/linear_probe.py): per-class logistic regression on frozen normalised
# global features, known labels only. Reference: CLIP paper (Radford et al. 2021) appendix A.3 and
# LAION-AI/CLIP_benchmark @48de38c clip_benchmark/metrics/linear_probe.py. C is searched on a validation set,
# never on test (bench/cell/fitdata.py); the runner does no gradient training.
linear_probe = dict(
    log10_c_range=[-6, 6],  # CLIP A.3: "between 10^-6 and 10^6" (CLIP_benchmark searches weight decay 1e-6..1e2, :269)
    steps_per_decade=8,  # CLIP A.3: "a resolution of 8 steps per decade" (96 steps)
    start_every=16,  # CLIP A.3: starts at [10^-6, 10^-4, .., 10^6]; halving as CLIP_benchmark linear_probe.py:273-277
    search=True,
    C=0.316,  # used only with search=False: CLIP README linear-probe example LogisticRegression(C=0.316)
    max_iter=1000,  # CLIP README example LogisticRegression(max_iter=1000)
    tol=1e-4,  # L-BFGS stop on the largest gradient entry: scikit-learn's default (CLIP kept its defaults)
    warm_start=True,  # bench's: each C of the search starts from the nearest C's fit (False: from zero, as sklearn)
)
