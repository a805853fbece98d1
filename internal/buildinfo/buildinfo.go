// Package buildinfo owns what a binary says about itself: its version,
// the commit it was built from, the Go version and the API it speaks.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// API is the API version the binary serves and speaks.
const API = "xhub.v1"

// Info is what the binary was built from.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Modified  bool   `json:"modified,omitempty"` // built from a tree with changes
	GoVersion string `json:"go_version"`
	API       string `json:"api"`
}

var (
	once sync.Once
	info Info
	// version and commit may be set at link time (the Dockerfile does:
	// -ldflags "-X github.com/xhub-gov/xhub/internal/buildinfo.commit=…"),
	// for builds where Go does not stamp the VCS state (-buildvcs=false,
	// no .git in the build context).
	version, commit string
)

// Get returns the build's information: the module version (a tag when
// installed with `go install …@vX`, else "devel") and the VCS commit Go
// stamped into the binary.
func Get() Info {
	once.Do(func() {
		info = Info{Version: "devel", GoVersion: runtime.Version(), API: API}
		defer func() {
			if version != "" {
				info.Version = version
			}
			if commit != "" {
				info.Commit = commit
			}
		}()
		bi, ok := debug.ReadBuildInfo()
		if !ok {
			return
		}
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			info.Version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Commit = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	})
	return info
}

// String is the one-line form: "devel (commit abc123, modified) go1.26 xhub.v1".
func (i Info) String() string {
	s := i.Version
	if i.Commit != "" {
		c := i.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		s += " (commit " + c
		if i.Modified {
			s += ", modified"
		}
		s += ")"
	}
	return s + " " + i.GoVersion + " " + i.API
}
