package bench

import (
	"os"
	"testing"
)

// OpenFiles counts as the directory's entries do (the listing's own descriptor
// aside), whichever way the kernel lets it count.
func TestOpenFiles(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("no /proc here")
	}
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for range 100 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	n, err := OpenFiles(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	listed, err := listFiles("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	if n < 100 || (n != listed && n != listed-1) {
		t.Fatalf("OpenFiles = %d, listed %d", n, listed)
	}
}
