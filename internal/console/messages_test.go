package console

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestCatalogsComplete: both languages have every key, and every key a
// template asks for exists; no template has words of its own outside
// the catalogs (only punctuation and markup between the tags).
func TestCatalogsComplete(t *testing.T) {
	for key := range messages["en"] {
		if _, ok := messages["zh"][key]; !ok {
			t.Errorf("zh lacks %q", key)
		}
	}
	for key := range messages["zh"] {
		if _, ok := messages["en"][key]; !ok {
			t.Errorf("en lacks %q", key)
		}
	}
	keyRE := regexp.MustCompile(`t \$?\.?[A-Za-z]* "([a-z._]+)"`)
	wordRE := regexp.MustCompile(`\p{L}{2,}`)
	tagRE := regexp.MustCompile(`(?s){{.*?}}|<[^>]*>`)
	files, _ := fs.Glob(assets, "templates/*.html")
	for _, f := range files {
		b, _ := fs.ReadFile(assets, f)
		for _, m := range keyRE.FindAllStringSubmatch(string(b), -1) {
			if _, ok := messages["en"][m[1]]; !ok {
				t.Errorf("%s asks for %q, in no catalog", f, m[1])
			}
		}
		rest := tagRE.ReplaceAllString(string(b), " ")
		for _, w := range wordRE.FindAllString(rest, -1) {
			if !slices.Contains([]string{"DOCTYPE", "html"}, w) {
				t.Errorf("%s has text of its own: %q (put it in the catalogs)", f, strings.TrimSpace(w))
			}
		}
	}
	for _, st := range []string{"open", "conditional", "none"} {
		if msg("zh", "share."+st) == "share."+st {
			t.Errorf("share.%s missing", st)
		}
	}
}
