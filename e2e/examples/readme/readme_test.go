package main

import (
	"bytes"
	"os"
	"testing"
)

// TestREADMEShowsThesePrograms checks that the README's Go blocks are this
// directory's files byte for byte, from the package clause on, so that the
// README cannot show code that no longer compiles or passes: its first Go
// block is main.go, and the first Go block of "## Testing your own app" is
// app_test.go.
func TestREADMEShowsThesePrograms(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file, after string // after: the README text the block follows ("" for the first block)
	}{
		{"main.go", ""},
		{"app_test.go", "\n## Testing your own app\n"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			src, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			_, body, ok := bytes.Cut(src, []byte("\npackage "))
			if !ok {
				t.Fatalf("%s has no package clause", tc.file)
			}
			want := append([]byte("package "), body...)
			text := readme
			if tc.after != "" {
				if _, text, ok = bytes.Cut(readme, []byte(tc.after)); !ok {
					t.Fatalf("README.md has no %q", tc.after)
				}
			}
			got, ok := goBlock(text)
			if !ok {
				t.Fatalf("README.md has no Go block for %s", tc.file)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("README.md's Go block differs from %s at byte %d: copy the file from its package clause on into the README (or the README's block into the file)", tc.file, firstDiff(got, want))
			}
		})
	}
}

// goBlock returns the content of the first fenced Go block in text.
func goBlock(text []byte) ([]byte, bool) {
	_, rest, ok := bytes.Cut(text, []byte("\n```go\n"))
	if !ok {
		return nil, false
	}
	block, _, ok := bytes.Cut(rest, []byte("\n```\n"))
	if !ok {
		return nil, false
	}
	return append(block, '\n'), true
}

func firstDiff(a, b []byte) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}
