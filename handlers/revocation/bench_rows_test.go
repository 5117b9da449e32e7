//go:build benchocsp || benchcrl

package revocation_test

import (
	"fmt"
	"os"
	"slices"
	"testing"
)

// benchRow appends Markdown rows (work | certdesk | peer | ratio) to
// $BENCH_OUT, which .ci/bench-ocsp.sh prints.
func benchRow(t *testing.T, rows ...string) {
	t.Helper()
	for _, r := range rows {
		t.Log(r)
	}
	if out := os.Getenv("BENCH_OUT"); out != "" {
		f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, r := range rows {
			fmt.Fprintln(f, r)
		}
	}
}

// spread is "median (min–max)" of xs.
func spread(xs []float64, format string) string {
	s := slices.Clone(xs)
	slices.Sort(s)
	return fmt.Sprintf(format+" (%s–%s)", s[len(s)/2], fmt.Sprintf(format, s[0]), fmt.Sprintf(format, s[len(s)-1]))
}

// median of xs.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
