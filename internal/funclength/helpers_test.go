package funclength

import (
	"os"
	"path/filepath"
	"strconv"
)

func itoa(n int) string { return strconv.Itoa(n) }

// osWrite writes a file, making its directory.
func osWrite(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}
