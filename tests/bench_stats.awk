# SPDX-License-Identifier: GPL-2.0
#
# The statistics of make bench's tables, shared by tests/bench.sh (in the
# guest: the profiles' tables) and scripts/bench.sh (on the host: the
# scaling table): median(), cell() and rows(). Functions only; each
# program reads its own input. rows(p, nt) fills m[target] with the
# medians of profile p for the nt targets of T[], from cnt[target, p] and
# v[target, p, 1..cnt], and returns the widest (max - min) / median.

function median(a, n,   i, j, t) {
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function cell(x) { return x == "" ? "-" : x >= 100 ? sprintf("%.0f", x) : sprintf("%.1f", x) }
function rows(p, nt,   i, j, t, lo, hi, a, worst) {
	worst = 0
	for (i = 1; i <= nt; i++) {
		t = T[i]; m[t] = ""
		if (!cnt[t, p]) continue
		lo = 1e30; hi = 0
		for (j = 1; j <= cnt[t, p]; j++) {
			a[j] = v[t, p, j]; if (a[j] < lo) lo = a[j]; if (a[j] > hi) hi = a[j]
		}
		m[t] = median(a, cnt[t, p])
		if (m[t] > 0 && (hi - lo) / m[t] > worst) worst = (hi - lo) / m[t]
	}
	return worst
}
