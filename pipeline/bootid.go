package pipeline

import (
	"fmt"
	"os"
	"strings"
)

// BootIDFile reads the boot id from path (the kernel's /proc/sys/kernel/random/boot_id).
func BootIDFile(path string) func() (string, error) {
	return func() (string, error) {
		data, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read boot id: %w", err)
		}
		id := strings.TrimSpace(string(data))
		if id == "" {
			return "", fmt.Errorf("read boot id: %s is empty", path)
		}
		return id, nil
	}
}
