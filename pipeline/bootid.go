package pipeline

import (
	"errors"
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

// RebootNote is a file in a directory that a boot empties (/run) where the pipeline notes the
// boot id of the reboot command it is about to run. A lock in phase rebooting whose boot id did
// not change means the command did not reboot the machine when the note is there, and that the
// command never ran (the run ended between the phase change and the command) when it is not.
// An empty RebootNote notes nothing: every unchanged boot id is a reboot that did not happen.
type RebootNote string

// Write notes that the reboot command is about to run on the boot bootID.
func (n RebootNote) Write(bootID string) error {
	if n == "" {
		return nil
	}
	if err := os.WriteFile(string(n), []byte(bootID+"\n"), 0o644); err != nil {
		return fmt.Errorf("note the reboot command: %w", err)
	}
	return nil
}

// Has says whether the reboot command was noted as run on the boot bootID.
func (n RebootNote) Has(bootID string) (bool, error) {
	if n == "" {
		return true, nil
	}
	data, err := os.ReadFile(string(n))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read the note of the reboot command: %w", err)
	}
	return strings.TrimSpace(string(data)) == bootID, nil
}
