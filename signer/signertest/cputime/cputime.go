// Package cputime measures CPU time, for the benchmarks and load runs that
// report it beside the wall time: on a machine shared with other work it
// varies far less, as time spent waiting for a core (or taken by other
// guests) is not the process's CPU time.
package cputime

import (
	"testing"
	"time"
)

// Report adds the metric cpu-µs/op to b: this process's CPU time since
// start (from Self) per operation.
func Report(b *testing.B, start time.Duration) {
	if b.N > 0 {
		b.ReportMetric(float64(Self()-start)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
	}
}
