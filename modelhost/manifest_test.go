package modelhost

import (
	"errors"
	"strings"
	"testing"

	"github.com/manta-ml/manta/api"
)

const goodSHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func TestParseManifest(t *testing.T) {
	cases := []struct {
		name   string
		json   string
		errHas string // "" means valid
	}{
		{"full", `{"id":"eta-eu-road","version":"3","runtime":"linear","format":"linear-json","entrypoint":"model.json",
			"memory_bytes":52428800,"files":[{"path":"model.json","size":1234,"sha256":"` + goodSHA + `"}],
			"created_at":"2026-11-20T10:00:00Z","description":"ETA","quality":{"metric":"mae_minutes","value":41.5},
			"batch":{"max_size":64,"max_wait_ms":2}}`, ""},
		{"go runtime without files", `{"id":"g","version":"1","runtime":"go","entrypoint":"my-func"}`, ""},
		{"unknown fields ignored", `{"id":"g","version":"1","runtime":"go","entrypoint":"f","future_field":{"x":1}}`, ""},
		{"nested file path", `{"id":"a.b_c-d","version":"12","runtime":"linear","entrypoint":"w/m.json","files":[{"path":"w/m.json","size":0,"sha256":"` + goodSHA + `"}]}`, ""},
		{"max id", `{"id":"` + "a" + strings.Repeat("b", 127) + `","version":"1","runtime":"go","entrypoint":"f"}`, ""},

		{"not json", `{"id":`, "manifest:"},
		{"trailing data", `{"id":"g","version":"1","runtime":"go","entrypoint":"f"} {}`, "manifest:"},
		{"wrong type", `{"id":"g","version":1,"runtime":"go","entrypoint":"f"}`, "manifest:"},
		{"missing id", `{"version":"1","runtime":"go","entrypoint":"f"}`, "invalid model id"},
		{"uppercase id", `{"id":"Eta","version":"1","runtime":"go","entrypoint":"f"}`, "invalid model id \"Eta\""},
		{"id with slash", `{"id":"a/b","version":"1","runtime":"go","entrypoint":"f"}`, "invalid model id"},
		{"id with dotdot", `{"id":"a..b","version":"1","runtime":"go","entrypoint":"f"}`, `contains ".."`},
		{"id too long", `{"id":"` + strings.Repeat("a", 129) + `","version":"1","runtime":"go","entrypoint":"f"}`, "invalid model id"},
		{"id leading dash", `{"id":"-a","version":"1","runtime":"go","entrypoint":"f"}`, "invalid model id"},
		{"missing version", `{"id":"g","runtime":"go","entrypoint":"f"}`, "version"},
		{"version zero", `{"id":"g","version":"0","runtime":"go","entrypoint":"f"}`, "invalid version \"0\""},
		{"version leading zero", `{"id":"g","version":"03","runtime":"go","entrypoint":"f"}`, "leading zeros"},
		{"version negative", `{"id":"g","version":"-3","runtime":"go","entrypoint":"f"}`, "invalid version"},
		{"version not integer", `{"id":"g","version":"1.2","runtime":"go","entrypoint":"f"}`, "invalid version"},
		{"version too long", `{"id":"g","version":"1234567890123456789","runtime":"go","entrypoint":"f"}`, "digits"},
		{"missing runtime", `{"id":"g","version":"1","entrypoint":"f"}`, "runtime is required (known: "},
		{"unknown runtime", `{"id":"g","version":"1","runtime":"tensorflow","entrypoint":"f"}`, `unknown runtime "tensorflow" (known: `},
		{"missing entrypoint", `{"id":"g","version":"1","runtime":"go"}`, "entrypoint is required"},
		{"entrypoint not a file", `{"id":"g","version":"1","runtime":"linear","entrypoint":"m.json","files":[]}`, `entrypoint "m.json" is not one of the files`},
		{"absolute path", `{"id":"g","version":"1","runtime":"linear","entrypoint":"/m","files":[{"path":"/m","size":1,"sha256":"` + goodSHA + `"}]}`, "files[0].path: manta: bad_input: invalid file path \"/m\": absolute"},
		{"dotdot path", `{"id":"g","version":"1","runtime":"go","entrypoint":"f","files":[{"path":"a/../../b","size":1,"sha256":"` + goodSHA + `"}]}`, "not clean"},
		{"dotdot element", `{"id":"g","version":"1","runtime":"go","entrypoint":"f","files":[{"path":"../b","size":1,"sha256":"` + goodSHA + `"}]}`, `contains ".."`},
		{"unclean path", `{"id":"g","version":"1","runtime":"go","entrypoint":"f","files":[{"path":"./b","size":1,"sha256":"` + goodSHA + `"}]}`, "not clean"},
		{"empty path", `{"id":"g","version":"1","runtime":"go","entrypoint":"f","files":[{"path":"","size":1,"sha256":"` + goodSHA + `"}]}`, "empty"},
		{"manifest as file", `{"id":"g","version":"1","runtime":"go","entrypoint":"f","files":[{"path":"manifest.json","size":1,"sha256":"` + goodSHA + `"}]}`, "reserved"},
		{"duplicate", `{"id":"g","version":"1","runtime":"go","entrypoint":"f","files":[{"path":"a","size":1,"sha256":"` + goodSHA + `"},{"path":"a","size":1,"sha256":"` + goodSHA + `"}]}`, `files[1].path "a": duplicate`},
		{"short sha", `{"id":"g","version":"1","runtime":"go","entrypoint":"f","files":[{"path":"a","size":1,"sha256":"abc"}]}`, "not 64 lowercase hex"},
		{"uppercase sha", `{"id":"g","version":"1","runtime":"go","entrypoint":"f","files":[{"path":"a","size":1,"sha256":"` + strings.ToUpper(goodSHA) + `"}]}`, "not 64 lowercase hex"},
		{"negative size", `{"id":"g","version":"1","runtime":"go","entrypoint":"f","files":[{"path":"a","size":-1,"sha256":"` + goodSHA + `"}]}`, "size -1 is negative"},
		{"negative memory", `{"id":"g","version":"1","runtime":"go","entrypoint":"f","memory_bytes":-5}`, "memory_bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(tc.json))
			if tc.errHas == "" {
				if err != nil {
					t.Fatalf("ParseManifest: %v", err)
				}
				if err := m.Validate(); err != nil {
					t.Fatalf("re-Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseManifest succeeded, want error containing %q", tc.errHas)
			}
			if !errors.Is(err, api.ErrBadInput) {
				t.Errorf("error %v does not wrap bad_input", err)
			}
			if !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("error %q does not contain %q", err, tc.errHas)
			}
		})
	}
}

func TestManifestRoundTrip(t *testing.T) {
	m, err := ParseManifest([]byte(`{"id":"x","version":"7","runtime":"linear","entrypoint":"m.json",
		"files":[{"path":"m.json","size":3,"sha256":"` + goodSHA + `"}],"quality":{"metric":"auc","value":0.9,"higher_is_better":true},
		"options":{"a":"b"}}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := EncodeManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := EncodeManifest(m2)
	if string(b) != string(b2) {
		t.Errorf("round trip changed the manifest:\n%s\n%s", b, b2)
	}
	c := m.Clone()
	c.Files[0].Path = "changed"
	c.Options["a"] = "changed"
	c.Quality.Value = 0
	if m.Files[0].Path != "m.json" || m.Options["a"] != "b" || m.Quality.Value != 0.9 {
		t.Error("Clone shares state with the original")
	}
	if m.Key() != "x@7" || m.FilesSize() != 3 {
		t.Errorf("Key/FilesSize = %s %d", m.Key(), m.FilesSize())
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"id":"eta-eu-road","version":"3","runtime":"linear","entrypoint":"model.json","files":[{"path":"model.json","size":1234,"sha256":"` + goodSHA + `"}]}`))
	f.Add([]byte(`{"id":"g","version":"1","runtime":"go","entrypoint":"f"}`))
	f.Add([]byte(`{"id":"g","version":"1","runtime":"go","entrypoint":"f","files":[{"path":"a/../b","size":1,"sha256":""}]}`))
	f.Add([]byte(`{"id":"a..b","version":"01"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			if !errors.Is(err, api.ErrBadInput) {
				t.Fatalf("error %v does not wrap bad_input", err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("parsed manifest does not re-validate: %v", err)
		}
		enc, err := EncodeManifest(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseManifest(enc); err != nil {
			t.Fatalf("encoded manifest does not parse: %v\n%s", err, enc)
		}
		for _, f := range m.Files {
			if strings.Contains(f.Path, "..") && ValidPath(f.Path) == nil {
				for _, el := range strings.Split(f.Path, "/") {
					if el == ".." {
						t.Fatalf("path %q with a .. element accepted", f.Path)
					}
				}
			}
		}
	})
}

func FuzzValidIDFast(f *testing.F) {
	for _, s := range []string{"a", "eta-eu-road", "A", "-a", "a..b", "a/b", "é", "", strings.Repeat("a", 129)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if validIDFast(s) != idPattern.MatchString(s) {
			t.Fatalf("validIDFast(%q) = %v, regexp says %v", s, validIDFast(s), idPattern.MatchString(s))
		}
	})
}
