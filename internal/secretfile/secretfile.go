// Package secretfile reads a credential from a file, as mounted secrets
// (Kubernetes, Docker) provide them: the whole file, without its trailing
// newline. An empty file is an error, so that a secret that failed to mount
// never turns into "no password" or "no token". Errors name the file, never
// its content.
package secretfile

import (
	"fmt"
	"os"
	"strings"
)

// Read returns the secret in the file at path.
func Read(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err // a *PathError: the path, not the content
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}
