package manta_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestSDKLinksNoDrivers: the SDK package links no store or runtime driver
// (minio-go, the S3 store, the Python runtime): programs import the ones
// they want, as database/sql users import a driver.
func TestSDKLinksNoDrivers(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goBin, "list", "-deps", "github.com/manta-ml/manta").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/minio/minio-go", "github.com/manta-ml/manta/pyworker", "github.com/manta-ml/manta/modelhost/s3store", "github.com/manta-ml/manta/modelhost/trees", "github.com/dmitryikh/leaves", "github.com/manta-ml/manta/modelhost/onnx"} {
			if dep == banned || strings.HasPrefix(dep, banned+"/") {
				t.Errorf("the SDK links %s", dep)
			}
		}
	}
}
