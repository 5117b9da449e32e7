package frontend

import (
	"io/fs"
	"testing"
)

func TestDist_ServesTheCommittedPlaceholderOrABuild(t *testing.T) {
	tests := []struct {
		name string
		path string
	}{
		{"placeholder is always embedded", "placeholder.html"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := fs.ReadFile(Dist(), tt.path)
			if err != nil {
				t.Fatalf("reading %s from Dist(): %v", tt.path, err)
			}
			if len(b) == 0 {
				t.Fatalf("%s is empty", tt.path)
			}
		})
	}
}

func TestDist_BuiltIndexReferencesHashedAssets(t *testing.T) {
	index, err := fs.ReadFile(Dist(), "index.html")
	if err != nil {
		// Not built (go build without Node): only the placeholder exists,
		// which the test above covers.
		return
	}
	assets, err := fs.Glob(Dist(), "assets/index-*.js")
	if err != nil || len(assets) == 0 {
		t.Fatalf("index.html is built but no assets/index-*.js exists (glob err %v)", err)
	}
	if len(index) == 0 {
		t.Fatal("index.html is empty")
	}
}
