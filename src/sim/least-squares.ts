/**
 * Non-negative least squares for the few cost terms the measured rates fit (a handful of variables, a few hundred
 * steps): the normal equations solved by Gaussian elimination, and any variable whose coefficient comes out
 * negative dropped (fixed at 0) and the rest refitted, until none is. A cost is never negative; where noise would
 * make one so, the others explain the data without it. A variable the others already determine (its column a
 * combination of theirs, e.g. two that were equal in every row) is dropped too: the others fit the data as well
 * without it. Written here: a library for a 5-variable fit is not worth a dependency.
 */
export function nonNegativeLeastSquares(x: readonly number[][], y: readonly number[]): number[] {
  const n = x[0]?.length ?? 0;
  const active = Array.from({ length: n }, (_, j) => j);
  for (;;) {
    const solution = solveNormalEquations(x, y, active);
    if ("dependent" in solution) {
      active.splice(solution.dependent, 1);
      continue;
    }
    const coefficients = new Array<number>(n).fill(0);
    active.forEach((j, k) => {
      coefficients[j] = solution.coefficients[k];
    });
    const worst = active.reduce((w, j) => (coefficients[j] < (w < 0 ? 0 : coefficients[w]) ? j : w), -1);
    if (worst < 0) return coefficients;
    active.splice(active.indexOf(worst), 1);
  }
}

/**
 * The least-squares coefficients of the `active` columns of x, or the position in `active` of a column that the
 * ones before it determine (elimination leaves nothing of it: under 1e-9 of its own sum of squares).
 */
function solveNormalEquations(
  x: readonly number[][],
  y: readonly number[],
  active: number[],
): { coefficients: number[] } | { dependent: number } {
  const m = active.length;
  // Augmented [XᵀX | Xᵀy] over the active columns.
  const a = active.map((j) => [
    ...active.map((k) => x.reduce((sum, row) => sum + row[j] * row[k], 0)),
    x.reduce((sum, row, i) => sum + row[j] * y[i], 0),
  ]);
  const squares = a.map((row, i) => row[i]);
  for (let col = 0; col < m; col++) {
    const pivot = a
      .slice(col)
      .reduce((best, row, i) => (Math.abs(row[col]) > Math.abs(a[best][col]) ? col + i : best), col);
    [a[col], a[pivot]] = [a[pivot], a[col]];
    if (!(Math.abs(a[col][col]) > 1e-9 * squares[col])) return { dependent: col };
    for (let row = 0; row < m; row++) {
      if (row === col) continue;
      const f = a[row][col] / a[col][col];
      for (let k = col; k <= m; k++) a[row][k] -= f * a[col][k];
    }
  }
  return { coefficients: a.map((row, i) => row[m] / row[i]) };
}
