//go:build !unix

package cputime

import "time"

// Self is not measured outside Unix: it is 0.
func Self() time.Duration { return 0 }
