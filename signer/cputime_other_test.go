//go:build !unix

package signer_test

import (
	"testing"
	"time"
)

// processCPU is not measured outside Unix.
func processCPU() time.Duration { return 0 }

// reportCPU reports nothing outside Unix.
func reportCPU(*testing.B, time.Duration) {}
