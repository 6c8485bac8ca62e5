"""Prints the reference figures src/data/team/agreement.rs tests against:
scikit-learn's cohen_kappa_score and statsmodels' fleiss_kappa on the same fixed data.
Usage: python3 tests/make_agreement_reference.py (needs scikit-learn and statsmodels)."""
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa

a = [0, 1, 1, 0, 2, 2, 1, 0, 1, 1, 2, 0]
b = [0, 1, 0, 0, 2, 1, 1, 0, 1, 2, 2, 1]
table = [[3, 0, 0], [0, 3, 0], [2, 1, 0], [1, 1, 1], [0, 2, 1], [0, 0, 3]]
print(f"COHEN_REFERENCE = {cohen_kappa_score(a, b)!r}")
print(f"FLEISS_REFERENCE = {float(fleiss_kappa(table, method='fleiss'))!r}")
