//go:build benchocsp

package revocation_test

import (
	"fmt"
	"math"
	"runtime/metrics"
)

// runtimeNames are the runtime/metrics samples the OCSP load reads before
// and after loading certdesk (which runs in this process): how often the
// collector ran, how long it stopped the world, how long runnable
// goroutines waited for a thread, and what was allocated.
var runtimeNames = []string{
	"/gc/cycles/total:gc-cycles",
	"/sched/pauses/total/gc:seconds",
	"/sched/latencies:seconds",
	"/gc/heap/allocs:bytes",
	"/gc/heap/allocs:objects",
	"/cpu/classes/gc/total:cpu-seconds",
	"/cpu/classes/total:cpu-seconds",
	"/gc/heap/goal:bytes",
	"/gc/gogc:percent",
	"/gc/gomemlimit:bytes",
}

// runtimeSnapshot is one reading of runtimeNames; histograms are copied
// (the runtime may reuse them on the next read).
type runtimeSnapshot struct {
	samples []metrics.Sample
	hists   map[string]*metrics.Float64Histogram
}

func readRuntime() runtimeSnapshot {
	s := runtimeSnapshot{samples: make([]metrics.Sample, len(runtimeNames)), hists: map[string]*metrics.Float64Histogram{}}
	for i, n := range runtimeNames {
		s.samples[i].Name = n
	}
	metrics.Read(s.samples)
	for _, x := range s.samples {
		if x.Value.Kind() == metrics.KindFloat64Histogram {
			h := x.Value.Float64Histogram()
			s.hists[x.Name] = &metrics.Float64Histogram{Counts: append([]uint64(nil), h.Counts...), Buckets: h.Buckets}
		}
	}
	return s
}

func (s runtimeSnapshot) value(name string) metrics.Value {
	for _, x := range s.samples {
		if x.Name == name {
			return x.Value
		}
	}
	return metrics.Value{}
}

// runtimeDelta describes what the runtime did between two readings, for
// answers answers.
func runtimeDelta(before, after runtimeSnapshot, answers int) string {
	u := func(s runtimeSnapshot, name string) uint64 { return s.value(name).Uint64() }
	f := func(s runtimeSnapshot, name string) float64 { return s.value(name).Float64() }
	pb, pa := before.hists["/sched/pauses/total/gc:seconds"], after.hists["/sched/pauses/total/gc:seconds"]
	lb, la := before.hists["/sched/latencies:seconds"], after.hists["/sched/latencies:seconds"]
	cycles := u(after, "/gc/cycles/total:gc-cycles") - u(before, "/gc/cycles/total:gc-cycles")
	gcCPU := f(after, "/cpu/classes/gc/total:cpu-seconds") - f(before, "/cpu/classes/gc/total:cpu-seconds")
	allCPU := f(after, "/cpu/classes/total:cpu-seconds") - f(before, "/cpu/classes/total:cpu-seconds")
	limit := "none"
	if l := u(after, "/gc/gomemlimit:bytes"); l != math.MaxInt64 {
		limit = fmt.Sprintf("%d MiB", l>>20)
	}
	return fmt.Sprintf("GC %d cycles (GOGC %d, limit %s, goal %.1f MiB), %.0f B and %.1f objects per answer; GC pauses: %s; GC %.0f%% of the runtime's CPU; scheduling latency: %s",
		cycles, u(after, "/gc/gogc:percent"), limit, float64(u(after, "/gc/heap/goal:bytes"))/(1<<20),
		float64(u(after, "/gc/heap/allocs:bytes")-u(before, "/gc/heap/allocs:bytes"))/float64(answers),
		float64(u(after, "/gc/heap/allocs:objects")-u(before, "/gc/heap/allocs:objects"))/float64(answers),
		histDelta(pb, pa), 100*gcCPU/max(allCPU, 1e-9), histDelta(lb, la))
}

// histDelta summarises the events recorded between two readings of a
// histogram of seconds: their number, total, p99 and maximum (bucket
// upper bounds).
func histDelta(before, after *metrics.Float64Histogram) string {
	d := make([]uint64, len(after.Counts))
	var n uint64
	var sum float64
	for i := range d {
		d[i] = after.Counts[i] - before.Counts[i]
		n += d[i]
		hi := after.Buckets[i+1]
		if math.IsInf(hi, 1) {
			hi = after.Buckets[i]
		}
		sum += float64(d[i]) * hi
	}
	if n == 0 {
		return "none"
	}
	upper := func(q float64) float64 {
		want := uint64(math.Ceil(q * float64(n)))
		var c uint64
		for i := range d {
			c += d[i]
			if c >= want {
				return after.Buckets[i+1]
			}
		}
		return math.Inf(1)
	}
	return fmt.Sprintf("%d, ≤%.1f ms in all, p99 ≤%.3f ms, max ≤%.3f ms", n, sum*1000, upper(0.99)*1000, upper(1)*1000)
}
