package schemas

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"regexp"
	"slices"
	"strings"

	"github.com/xhub-gov/xhub/exchange/vocab"
)

// Mode is a subject's compatibility mode.
type Mode string

const (
	ModeNone               Mode = "NONE"
	ModeBackward           Mode = "BACKWARD"
	ModeBackwardTransitive Mode = "BACKWARD_TRANSITIVE"
	ModeForward            Mode = "FORWARD"
	ModeForwardTransitive  Mode = "FORWARD_TRANSITIVE"
	ModeFull               Mode = "FULL"
	ModeFullTransitive     Mode = "FULL_TRANSITIVE"
)

// DefaultMode is FORWARD: data written with a new version can still be read
// by consumers of the previous one, so evolving a schema never breaks them.
const DefaultMode = ModeForward

// Modes lists every mode.
var Modes = []Mode{ModeNone, ModeBackward, ModeBackwardTransitive, ModeForward, ModeForwardTransitive, ModeFull, ModeFullTransitive}

// ParseMode accepts a mode name in any case.
func ParseMode(s string) (Mode, error) {
	m := Mode(strings.ToUpper(strings.TrimSpace(s)))
	if slices.Contains(Modes, m) {
		return m, nil
	}
	return "", vocab.Invalid("compat", "%q is not one of NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE", s)
}

func (m Mode) transitive() bool { return strings.HasSuffix(string(m), "_TRANSITIVE") }
func (m Mode) backward() bool {
	return strings.HasPrefix(string(m), "BACKWARD") || strings.HasPrefix(string(m), "FULL")
}
func (m Mode) forward() bool {
	return strings.HasPrefix(string(m), "FORWARD") || strings.HasPrefix(string(m), "FULL")
}

// Problem is one reason a candidate is incompatible.
type Problem struct {
	Version   int    // the earlier version it conflicts with
	Direction string // "backward" or "forward"
	Path      string // JSON pointer into the schema
	Rule      string // what changed, e.g. "type changed integer → string"
}

func (p Problem) String() string {
	path := p.Path
	if path == "" {
		path = "/"
	}
	return fmt.Sprintf("%s: %s (%s, against version %d)", path, p.Rule, p.Direction, p.Version)
}

// Check returns every problem that makes candidate incompatible with the
// earlier versions (oldest first) under mode. No problems means compatible.
func Check(mode Mode, earlier []*Schema, candidate *Schema) []Problem {
	if mode == ModeNone || len(earlier) == 0 {
		return nil
	}
	first := len(earlier) - 1
	if mode.transitive() {
		first = 0
	}
	var out []Problem
	for i := len(earlier) - 1; i >= first; i-- {
		old := earlier[i]
		if mode.backward() {
			c := &checker{oldRoot: old.doc, newRoot: candidate.doc, aIsOld: true, seen: map[[2]string]bool{}}
			c.subset(old.doc, candidate.doc, "", "#", "#")
			for _, p := range c.problems {
				p.Version, p.Direction = i+1, "backward"
				out = append(out, p)
			}
		}
		if mode.forward() {
			c := &checker{oldRoot: old.doc, newRoot: candidate.doc, aIsOld: false, seen: map[[2]string]bool{}}
			c.subset(candidate.doc, old.doc, "", "#", "#")
			for _, p := range c.problems {
				p.Version, p.Direction = i+1, "forward"
				out = append(out, p)
			}
		}
	}
	return out
}

// checker proves "every instance valid under a is valid under b". When
// aIsOld, a is the old schema (a BACKWARD check); otherwise a is the new one
// (a FORWARD check). Rules are always worded old → new.
type checker struct {
	oldRoot, newRoot any
	aIsOld           bool
	seen             map[[2]string]bool // $ref pairs under proof: assume true (coinduction)
	problems         []Problem
}

func (c *checker) fail(path, format string, args ...any) {
	c.problems = append(c.problems, Problem{Path: path, Rule: fmt.Sprintf(format, args...)})
}

func (c *checker) roots() (aRoot, bRoot any) {
	if c.aIsOld {
		return c.oldRoot, c.newRoot
	}
	return c.newRoot, c.oldRoot
}

// oldNew orders an (a, b) pair as (old, new).
func (c *checker) oldNew(a, b any) (old, new any) {
	if c.aIsOld {
		return a, b
	}
	return b, a
}

var annotations = map[string]bool{
	"$schema": true, "$id": true, "$defs": true, "definitions": true, "$comment": true, "$anchor": true,
	"title": true, "description": true, "default": true, "examples": true, "deprecated": true,
	"readOnly": true, "writeOnly": true, "$vocabulary": true,
}

var understood = map[string]bool{
	"type": true, "properties": true, "required": true, "additionalProperties": true, "enum": true,
	"const": true, "items": true, "minimum": true, "maximum": true, "exclusiveMinimum": true,
	"exclusiveMaximum": true, "minLength": true, "maxLength": true, "minItems": true, "maxItems": true,
	"pattern": true, "format": true, "$ref": true,
	"multipleOf": true, "minProperties": true, "maxProperties": true, "dependentRequired": true,
	"allOf": true, "anyOf": true, "not": true, "contains": true, "minContains": true, "maxContains": true,
	"uniqueItems": true, "oneOf": true, "dependentSchemas": true, "prefixItems": true,
}

// deref follows a $ref that stands alone (annotations aside).
func (c *checker) deref(root, s any, ptr string) (any, string) {
	for range 64 {
		m, ok := s.(map[string]any)
		if !ok {
			return s, ptr
		}
		ref, ok := m["$ref"].(string)
		if !ok || !strings.HasPrefix(ref, "#") {
			return s, ptr
		}
		for k := range m {
			if k != "$ref" && !annotations[k] {
				return s, ptr // $ref beside constraints: handled as an opaque keyword
			}
		}
		s, ptr = lookupPointer(root, ref[1:]), ref
		if s == nil {
			return map[string]any{}, ptr
		}
	}
	return s, ptr
}

func (c *checker) subset(a, b any, path, aPtr, bPtr string) {
	aRoot, bRoot := c.roots()
	a, aPtr = c.deref(aRoot, a, aPtr)
	b, bPtr = c.deref(bRoot, b, bPtr)
	// All accept-everything schemas are one schema: naming them alike keeps
	// the proof finite when a missing keyword stands in for "true".
	if acceptsAll(a) {
		aPtr = "<true>"
	}
	if acceptsAll(b) {
		bPtr = "<true>"
	}
	key := [2]string{aPtr, bPtr}
	if c.seen[key] {
		return // already under proof: assume it holds (coinduction)
	}
	c.seen[key] = true

	if bb, ok := b.(bool); ok {
		if bb {
			return
		}
		if ab, ok := a.(bool); ok && !ab {
			return
		}
		if c.aIsOld {
			c.fail(path, "schema changed to false: nothing is accepted any more")
		} else {
			c.fail(path, "the old schema was false here: nothing was accepted")
		}
		return
	}
	if ab, ok := a.(bool); ok {
		if !ab {
			return
		}
		a = map[string]any{}
	}
	am, _ := a.(map[string]any)
	bm, _ := b.(map[string]any)
	if am == nil || bm == nil {
		return
	}

	am, bm = withoutUnevaluated(am), withoutUnevaluated(bm)

	// Keywords the checker does not model must be identical where b has them.
	var opaque []string
	for k, bv := range bm {
		if understood[k] || annotations[k] {
			continue
		}
		if av, ok := am[k]; !ok || !jsonEqual(av, bv) {
			opaque = append(opaque, k)
		}
	}
	if _, hasRef := bm["$ref"]; hasRef {
		if av, ok := am["$ref"]; !ok || !jsonEqual(av, bm["$ref"]) {
			opaque = append(opaque, "$ref")
		}
	}
	slices.Sort(opaque)
	for _, k := range opaque {
		c.fail(path, "keyword %q differs and cannot be proved compatible (the checker models type, properties, required, additionalProperties, enum, const, items, bounds, multipleOf, pattern, format, allOf, anyOf, not, dependentRequired, minProperties/maxProperties, contains bounds and local $ref)", k)
	}

	// Two keywords of a widen others of a: patternProperties takes the
	// names it matches from additionalProperties, prefixItems the
	// positions it covers from items. Ignoring them would prove too much;
	// they must be the same on both sides (then handled below).
	for _, k := range []string{"patternProperties"} {
		if av, ok := am[k]; ok {
			if bv, ok := bm[k]; !ok || !jsonEqual(av, bv) {
				c.fail(path, "keyword %q in the %s schema changes what its %s covers; unless it is the same in both, this cannot be proved compatible", k, c.which(true), map[string]string{"patternProperties": "additionalProperties", "prefixItems": "items"}[k])
				return
			}
		}
	}

	aTypes := effectiveTypes(am)
	bTypes := effectiveTypes(bm)
	if !typesSubset(aTypes, bTypes) {
		ot, nt := c.oldNew(am, bm)
		c.fail(path, "type changed %s → %s", typeDesc(ot.(map[string]any)), typeDesc(nt.(map[string]any)))
		return
	}
	c.enum(am, bm, path)

	c.combinators(am, bm, path, aPtr, bPtr)
	if aTypes["number"] || aTypes["integer"] {
		c.lowerBound(am, bm, path)
		c.upperBound(am, bm, path)
		c.multipleOf(am, bm, path)
	}
	if aTypes["string"] {
		c.intBound(am, bm, path, "minLength", true)
		c.intBound(am, bm, path, "maxLength", false)
		c.sameString(am, bm, path, "pattern")
		c.sameString(am, bm, path, "format")
	}
	if aTypes["array"] {
		c.intBound(am, bm, path, "minItems", true)
		c.intBound(am, bm, path, "maxItems", false)
		c.contains(am, bm, path, aPtr, bPtr)
		if u, _ := bm["uniqueItems"].(bool); u {
			au, _ := am["uniqueItems"].(bool)
			maxOne := false
			if mx, ok := number(am["maxItems"]); ok && mx.Cmp(big.NewRat(1, 1)) <= 0 {
				maxOne = true
			}
			if !au && !maxOne {
				if c.aIsOld {
					c.fail(path, "uniqueItems added: old data may repeat items")
				} else {
					c.fail(path, "uniqueItems removed: new data may repeat items")
				}
			}
		}
		c.positions(am, bm, path, aPtr, bPtr)
	}
	if aTypes["object"] {
		c.object(am, bm, path, aPtr, bPtr)
		c.intBound(am, bm, path, "minProperties", true)
		c.intBound(am, bm, path, "maxProperties", false)
		c.dependentRequired(am, bm, path)
	}
}

// combinators proves a ⊆ b for b's allOf (a ⊆ each), anyOf (a ⊆ some
// branch) and not (a and the negated schema share no instance, shown by
// their types). a's own combinators only narrow a, so they are not needed
// for the proof (and are ignored, soundly).
func (c *checker) combinators(am, bm map[string]any, path, aPtr, bPtr string) {
	if all, ok := bm["allOf"].([]any); ok {
		if av, ok := am["allOf"]; ok && jsonEqual(av, all) {
			// identical: nothing to prove beyond the rest
		} else {
			for i, sub := range all {
				c.subset(am, sub, path, aPtr, fmt.Sprintf("%s/allOf/%d", bPtr, i))
			}
		}
	}
	if anyOf, ok := bm["anyOf"].([]any); ok {
		if av, ok := am["anyOf"]; !ok || !jsonEqual(av, anyOf) {
			if !c.someBranch(am, anyOf, aPtr, bPtr+"/anyOf") {
				if branches, ok := ownBranches(am); ok && c.eachBranchIn(branches, anyOf, aPtr+"/anyOf", bPtr+"/anyOf") {
					// every branch of a's anyOf is in some branch of b's
				} else {
					o, n := c.oldNew(am["anyOf"], anyOf)
					c.fail(path, "anyOf %s: no branch of the %s schema accepts all of the %s", change(valueDesc(o), valueDesc(n)), c.which(false), c.which(true))
				}
			}
		}
	}
	if oneOf, ok := bm["oneOf"].([]any); ok {
		if av, ok := am["oneOf"]; !ok || !jsonEqual(av, oneOf) {
			if !c.exactlyOne(am, oneOf, aPtr, bPtr+"/oneOf") && !c.eachBranchExactlyOne(am, oneOf, aPtr, bPtr+"/oneOf") {
				o, n := c.oldNew(am["oneOf"], oneOf)
				c.fail(path, "oneOf %s: no branch of the %s schema accepts all of the %s while the others, by their types, accept none of it", change(valueDesc(o), valueDesc(n)), c.which(false), c.which(true))
			}
		}
	}
	if deps, ok := bm["dependentSchemas"].(map[string]any); ok {
		aDeps, _ := am["dependentSchemas"].(map[string]any)
		aProps, _ := am["properties"].(map[string]any)
		for _, p := range sortedKeys(deps) {
			ad, has := aDeps[p]
			switch {
			case has && c.trial(func() {
				c.subset(ad, deps[p], path, aPtr+"/dependentSchemas/"+escape(p), bPtr+"/dependentSchemas/"+escape(p))
			}):
			case isFalse(aProps[p]):
			case c.trial(func() { c.subset(am, deps[p], path, aPtr, bPtr+"/dependentSchemas/"+escape(p)) }):
			default:
				c.fail(path+"/dependentSchemas/"+escape(p), "what the %s schema requires when %q is present cannot be proved of the %s", c.which(false), p, c.which(true))
			}
		}
	}
	if not, ok := bm["not"]; ok {
		if av, ok := am["not"]; !ok || !jsonEqual(av, not) {
			// not d ⊆ not c when c ⊆ d.
			if ad, ok := am["not"]; ok && c.trial(func() { c.subset(not, ad, path, bPtr+"/not", aPtr+"/not") }) {
				return
			}
			nm, _ := not.(map[string]any)
			aT, nT := effectiveTypes(am), effectiveTypes(nm)
			disjoint := nm != nil && len(aT) > 0 && len(nT) > 0
			for t := range aT {
				if nT[t] || (t == "integer" && nT["number"]) || (t == "number" && nT["integer"]) {
					disjoint = false
				}
			}
			if !disjoint {
				c.fail(path, "not %s cannot be proved: the %s schema may accept what it excludes", valueDesc(not), c.which(true))
			}
		}
	}
}

// exactlyOne reports whether a ⊆ one branch and, by types, shares no
// instance with any other (so every instance of a matches exactly one).
func (c *checker) exactlyOne(am map[string]any, branches []any, aPtr, bPtr string) bool {
	aT := effectiveTypes(am)
	for i, br := range branches {
		if !c.trial(func() { c.subset(am, br, "", aPtr, fmt.Sprintf("%s/%d", bPtr, i)) }) {
			continue
		}
		others := true
		for j, other := range branches {
			if j == i {
				continue
			}
			om, ok := other.(map[string]any)
			if !ok || !typesDisjoint(aT, effectiveTypes(om)) {
				others = false
				break
			}
		}
		if others {
			return true
		}
	}
	return false
}

// eachBranchExactlyOne: every branch of a's own oneOf or anyOf is in
// exactly one of b's branches (each instance of a is in some branch of
// a's, hence in exactly one of b's).
func (c *checker) eachBranchExactlyOne(am map[string]any, branches []any, aPtr, bPtr string) bool {
	for _, k := range []string{"oneOf", "anyOf"} {
		own, ok := am[k].([]any)
		if !ok {
			continue
		}
		all := true
		for i, br := range own {
			bm, ok := br.(map[string]any)
			if !ok || !c.exactlyOne(bm, branches, fmt.Sprintf("%s/%s/%d", aPtr, k, i), bPtr) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func typesDisjoint(a, b map[string]bool) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	for t := range a {
		if b[t] || (t == "integer" && b["number"]) || (t == "number" && b["integer"]) {
			return false
		}
	}
	return true
}

// withoutUnevaluated rewrites unevaluatedProperties as
// additionalProperties (and unevaluatedItems as items) where the two
// mean the same: no subschema at this level can evaluate more (no
// combinator, reference, condition or dependent schema) and the keyword
// it stands for is absent.
func withoutUnevaluated(m map[string]any) map[string]any {
	for _, k := range []string{"allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$ref", "$dynamicRef", "dependentSchemas"} {
		if _, ok := m[k]; ok {
			return m
		}
	}
	var out map[string]any
	for _, sw := range [][2]string{{"unevaluatedProperties", "additionalProperties"}, {"unevaluatedItems", "items"}} {
		v, ok := m[sw[0]]
		if !ok {
			continue
		}
		if _, taken := m[sw[1]]; taken {
			continue
		}
		if _, ok := m["contains"]; ok && sw[0] == "unevaluatedItems" {
			continue // contains evaluates the items it matches
		}
		if out == nil {
			out = maps.Clone(m)
		}
		delete(out, sw[0])
		out[sw[1]] = v
	}
	if out == nil {
		return m
	}
	return out
}

// which names a side: the schema whose instances must be accepted (a) or
// the one that must accept them (b), as old or new.
func (c *checker) which(a bool) string {
	if a == c.aIsOld {
		return "old"
	}
	return "new"
}

// someBranch reports whether a ⊆ one of branches, trying each on a
// scratch copy of the proof state.
func (c *checker) someBranch(a any, branches []any, aPtr, bPtr string) bool {
	for i, br := range branches {
		if c.trial(func() { c.subset(a, br, "", aPtr, fmt.Sprintf("%s/%d", bPtr, i)) }) {
			return true
		}
	}
	return false
}

// ownBranches is a's anyOf or oneOf: each instance of a is in one of them.
func ownBranches(am map[string]any) ([]any, bool) {
	if b, ok := am["anyOf"].([]any); ok {
		return b, true
	}
	b, ok := am["oneOf"].([]any)
	return b, ok
}

// eachBranchIn reports whether every branch of a's anyOf is in some
// branch of b's.
func (c *checker) eachBranchIn(aBranches, bBranches []any, aPtr, bPtr string) bool {
	for i, ab := range aBranches {
		if !c.someBranch(ab, bBranches, fmt.Sprintf("%s/%d", aPtr, i), bPtr) {
			return false
		}
	}
	return true
}

// trial runs a proof step and reports whether it found no problem,
// leaving no trace of it.
func (c *checker) trial(step func()) bool {
	problems, seen := c.problems, maps.Clone(c.seen)
	c.problems = nil
	step()
	ok := len(c.problems) == 0
	c.problems, c.seen = problems, seen
	return ok
}

// positions proves a's items within b's, position by position: a
// position's schema is prefixItems[i] where there is one, else items
// (absent: anything); past both prefixes, items against items.
func (c *checker) positions(am, bm map[string]any, path, aPtr, bPtr string) {
	aPre, _ := am["prefixItems"].([]any)
	bPre, _ := bm["prefixItems"].([]any)
	at := func(m map[string]any, pre []any, ptr string, i int) (any, string) {
		if i < len(pre) {
			return pre[i], fmt.Sprintf("%s/prefixItems/%d", ptr, i)
		}
		if it, ok := m["items"]; ok {
			return it, ptr + "/items"
		}
		return true, ptr + "/items"
	}
	for i := range max(len(aPre), len(bPre)) {
		a, ap := at(am, aPre, aPtr, i)
		b, bp := at(bm, bPre, bPtr, i)
		c.subset(a, b, fmt.Sprintf("%s/%d", path, i), ap, bp)
	}
	if _, ok := bm["items"]; ok {
		a, ap := at(am, nil, aPtr, 0)
		c.subset(a, bm["items"], path+"/items", ap, bPtr+"/items")
	}
}

// multipleOf: a ⊆ b when b has none, or a's step is a whole multiple of b's.
func (c *checker) multipleOf(am, bm map[string]any, path string) {
	bv, bOK := number(bm["multipleOf"])
	if !bOK {
		return
	}
	if av, aOK := number(am["multipleOf"]); aOK && bv.Sign() > 0 {
		if q := new(big.Rat).Quo(av, bv); q.IsInt() {
			return
		}
	}
	o, n := c.oldNew(am["multipleOf"], bm["multipleOf"])
	c.fail(path, "multipleOf %s: the %s step is not a whole multiple of the %s one", change(valueDesc(o), valueDesc(n)), c.which(true), c.which(false))
}

// contains: with the same contains schema, a's minContains ≥ b's and
// maxContains ≤ b's.
func (c *checker) contains(am, bm map[string]any, path, aPtr, bPtr string) {
	bc, ok := bm["contains"]
	if !ok {
		return
	}
	ac, ok := am["contains"]
	if !ok || !jsonEqual(ac, bc) {
		o, n := c.oldNew(ac, bc)
		c.fail(path, "contains %s cannot be proved compatible", change(valueDesc(o), valueDesc(n)))
		return
	}
	amin, bmin := am["minContains"], bm["minContains"]
	if amin == nil {
		amin = 1.0
	}
	if bmin == nil {
		bmin = 1.0
	}
	c.intBound(map[string]any{"minContains": amin}, map[string]any{"minContains": bmin}, path, "minContains", true)
	c.intBound(am, bm, path, "maxContains", false)
}

// dependentRequired: every dependency of b holds in a, by a's own
// dependency or because a requires the property outright.
func (c *checker) dependentRequired(am, bm map[string]any, path string) {
	bDeps, _ := bm["dependentRequired"].(map[string]any)
	aDeps, _ := am["dependentRequired"].(map[string]any)
	aReq := stringSet(am["required"])
	for _, p := range sortedKeys(bDeps) {
		have := stringSet(aDeps[p])
		for _, q := range sortedSet(stringSet(bDeps[p])) {
			if have[q] || aReq[q] {
				continue
			}
			if c.aIsOld {
				c.fail(path+"/dependentRequired", "property %q newly requires %q", p, q)
			} else {
				c.fail(path+"/dependentRequired", "property %q no longer requires %q", p, q)
			}
		}
	}
}

func (c *checker) object(am, bm map[string]any, path, aPtr, bPtr string) {
	aReq, bReq := stringSet(am["required"]), stringSet(bm["required"])
	for _, r := range sortedSet(bReq) {
		if !aReq[r] {
			if c.aIsOld {
				c.fail(path+"/required", "property %q is newly required", r)
			} else {
				c.fail(path+"/required", "property %q is no longer required", r)
			}
		}
	}
	aProps, _ := am["properties"].(map[string]any)
	bProps, _ := bm["properties"].(map[string]any)
	aAdd, aHasAdd := am["additionalProperties"]
	bAdd, bHasAdd := bm["additionalProperties"]
	if !aHasAdd {
		aAdd = true
	}
	if !bHasAdd {
		bAdd = true
	}

	// With the same patternProperties on both sides (subset checked that),
	// a name a pattern matches is constrained by the pattern's schema, not
	// by additionalProperties.
	patterns, _ := am["patternProperties"].(map[string]any)
	matching := func(name string) (schemas []any, ptrs []string, ok bool) {
		for _, pat := range sortedKeys(patterns) {
			re, err := regexp.Compile(pat)
			if err != nil {
				return nil, nil, false
			}
			if re.MatchString(name) {
				schemas = append(schemas, patterns[pat])
				ptrs = append(ptrs, "/patternProperties/"+escape(pat))
			}
		}
		return schemas, ptrs, true
	}
	for _, name := range sortedKeys(aProps) {
		p := path + "/properties/" + escape(name)
		if bp, ok := bProps[name]; ok {
			c.subset(aProps[name], bp, p, aPtr+"/properties/"+escape(name), bPtr+"/properties/"+escape(name))
			continue
		}
		if ms, _, ok := matching(name); !ok {
			c.fail(p, "a patternProperties pattern is not one the checker can evaluate: cannot be proved compatible")
			continue
		} else if len(ms) > 0 {
			continue // both sides apply the same pattern schemas to it, and a adds its own
		}
		if isFalse(aProps[name]) {
			continue
		}
		if isFalse(bAdd) {
			if c.aIsOld {
				c.fail(p, "property %q removed, and the new schema has additionalProperties: false, so old data carrying it is refused", name)
			} else {
				c.fail(p, "property %q added, but the old schema has additionalProperties: false, so old consumers refuse it", name)
			}
			continue
		}
		c.subset(aProps[name], bAdd, p, aPtr+"/properties/"+escape(name), bPtr+"/additionalProperties")
	}
	for _, name := range sortedKeys(bProps) {
		if _, ok := aProps[name]; ok {
			continue
		}
		p := path + "/properties/" + escape(name)
		ms, ptrs, ok := matching(name)
		if !ok {
			c.fail(p, "a patternProperties pattern is not one the checker can evaluate: cannot be proved compatible")
			continue
		}
		if len(ms) > 0 {
			// a constrains the name by every matching pattern: one of them
			// within b's schema for it suffices.
			proved := false
			for i, m := range ms {
				if c.trial(func() { c.subset(m, bProps[name], p, aPtr+ptrs[i], bPtr+"/properties/"+escape(name)) }) {
					proved = true
					break
				}
			}
			if !proved {
				c.fail(p, "property %q is constrained by the %s schema but only by a pattern of the %s one, which allows more", name, c.which(false), c.which(true))
			}
			continue
		}
		if isFalse(aAdd) {
			continue
		}
		before := len(c.problems)
		c.subset(aAdd, bProps[name], p, aPtr+"/additionalProperties", bPtr+"/properties/"+escape(name))
		if len(c.problems) > before {
			c.problems = c.problems[:before]
			if c.aIsOld {
				c.fail(p, "property %q added with constraints, but the old schema's open content model allowed any value there (old data may carry it)", name)
			} else {
				c.fail(p, "property %q removed, but the old schema constrains it and the new schema's open content model allows any value there", name)
			}
		}
	}
	if aHasAdd || bHasAdd {
		c.subset(aAdd, bAdd, path+"/additionalProperties", aPtr+"/additionalProperties", bPtr+"/additionalProperties")
	}
}

func (c *checker) enum(am, bm map[string]any, path string) {
	bVals, bHas := enumValues(bm)
	if !bHas {
		return
	}
	aVals, aHas := enumValues(am)
	if !aHas {
		// A finite type has its values listed by its type alone.
		if t := effectiveTypes(am); len(t) > 0 && typesSubset(t, map[string]bool{"boolean": true, "null": true}) {
			if t["boolean"] {
				aVals = append(aVals, true, false)
			}
			if t["null"] {
				aVals = append(aVals, nil)
			}
			aHas = true
		}
	}
	if !aHas {
		if c.aIsOld {
			c.fail(path, "enum added: only %s accepted now", listValues(bVals))
		} else {
			c.fail(path, "enum removed: the old schema accepted only %s", listValues(bVals))
		}
		return
	}
	aTypes := effectiveTypes(am)
	for _, v := range aVals {
		if k := kindOf(v); len(aTypes) > 0 && !aTypes[k] && !(k == "integer" && aTypes["number"]) {
			continue // a's own type excludes this value
		}
		if !slices.ContainsFunc(bVals, func(w any) bool { return jsonEqual(v, w) }) {
			if c.aIsOld {
				c.fail(path, "enum value %s removed", canon(v))
			} else {
				c.fail(path, "enum value %s added", canon(v))
			}
		}
	}
}

// lowerBound: b's lower bound must be implied by a's.
func (c *checker) lowerBound(am, bm map[string]any, path string) {
	bMin, bEx, bOK := lower(bm)
	if !bOK {
		return
	}
	aMin, aEx, aOK := lower(am)
	if aOK && (aMin.Cmp(bMin) > 0 || aMin.Cmp(bMin) == 0 && (aEx || !bEx)) {
		return
	}
	o, n := c.oldNew(am, bm)
	c.fail(path, "lower bound %s", change(boundDesc(lower(o.(map[string]any))), boundDesc(lower(n.(map[string]any)))))
}

func (c *checker) upperBound(am, bm map[string]any, path string) {
	bMax, bEx, bOK := upper(bm)
	if !bOK {
		return
	}
	aMax, aEx, aOK := upper(am)
	if aOK && (aMax.Cmp(bMax) < 0 || aMax.Cmp(bMax) == 0 && (aEx || !bEx)) {
		return
	}
	o, n := c.oldNew(am, bm)
	c.fail(path, "upper bound %s", change(boundDesc(upper(o.(map[string]any))), boundDesc(upper(n.(map[string]any)))))
}

func (c *checker) intBound(am, bm map[string]any, path, kw string, isMin bool) {
	bv, bOK := number(bm[kw])
	if !bOK {
		return
	}
	av, aOK := number(am[kw])
	if aOK && (isMin && av.Cmp(bv) >= 0 || !isMin && av.Cmp(bv) <= 0) {
		return
	}
	o, n := c.oldNew(am[kw], bm[kw])
	c.fail(path, "%s %s", kw, change(valueDesc(o), valueDesc(n)))
}

func (c *checker) sameString(am, bm map[string]any, path, kw string) {
	bv, bOK := bm[kw].(string)
	if !bOK {
		return
	}
	if av, ok := am[kw].(string); ok && av == bv {
		return
	}
	o, n := c.oldNew(am[kw], bm[kw])
	c.fail(path, "%s %s", kw, change(valueDesc(o), valueDesc(n)))
}

func change(old, new string) string {
	switch {
	case old == "":
		return "added: " + new
	case new == "":
		return "removed (was " + old + ")"
	}
	return "changed " + old + " → " + new
}

func valueDesc(v any) string {
	if v == nil {
		return ""
	}
	return canon(v)
}

func boundDesc(v *big.Rat, exclusive, ok bool) string {
	if !ok {
		return ""
	}
	s := v.RatString()
	if exclusive {
		return "exclusive " + s
	}
	return s
}

func lower(m map[string]any) (*big.Rat, bool, bool) {
	v, ok := number(m["minimum"])
	ev, eok := number(m["exclusiveMinimum"])
	switch {
	case ok && eok:
		if ev.Cmp(v) >= 0 {
			return ev, true, true
		}
		return v, false, true
	case eok:
		return ev, true, true
	}
	return v, false, ok
}

func upper(m map[string]any) (*big.Rat, bool, bool) {
	v, ok := number(m["maximum"])
	ev, eok := number(m["exclusiveMaximum"])
	switch {
	case ok && eok:
		if ev.Cmp(v) <= 0 {
			return ev, true, true
		}
		return v, false, true
	case eok:
		return ev, true, true
	}
	return v, false, ok
}

func number(v any) (*big.Rat, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(n.String())
	return r, ok
}

var allTypes = []string{"array", "boolean", "integer", "null", "number", "object", "string"}

// effectiveTypes is the set of JSON types an instance may have.
func effectiveTypes(m map[string]any) map[string]bool {
	set := map[string]bool{}
	if vals, ok := enumValues(m); ok {
		for _, v := range vals {
			set[kindOf(v)] = true
		}
		if t, ok := m["type"]; ok {
			declared := typeSet(t)
			for k := range set {
				if !declared[k] && !(k == "integer" && declared["number"]) {
					delete(set, k)
				}
			}
		}
		return set
	}
	if t, ok := m["type"]; ok {
		return typeSet(t)
	}
	for _, t := range allTypes {
		set[t] = true
	}
	return set
}

func typeSet(t any) map[string]bool {
	set := map[string]bool{}
	switch t := t.(type) {
	case string:
		set[t] = true
	case []any:
		for _, x := range t {
			if s, ok := x.(string); ok {
				set[s] = true
			}
		}
	}
	return set
}

func typesSubset(a, b map[string]bool) bool {
	for t := range a {
		if !b[t] && !(t == "integer" && b["number"]) {
			return false
		}
	}
	return true
}

func typeDesc(m map[string]any) string {
	if t, ok := m["type"]; ok {
		return strings.Join(sortedSet(typeSet(t)), "|")
	}
	if _, ok := enumValues(m); ok {
		return strings.Join(sortedSet(effectiveTypes(m)), "|") + " (from enum)"
	}
	return "any"
}

func kindOf(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		if _, err := v.Int64(); err == nil {
			return "integer"
		}
		if r, ok := new(big.Rat).SetString(v.String()); ok && r.IsInt() {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	}
	return "object"
}

func enumValues(m map[string]any) ([]any, bool) {
	if c, ok := m["const"]; ok {
		return []any{c}, true
	}
	if e, ok := m["enum"].([]any); ok {
		return e, true
	}
	return nil, false
}

func listValues(vs []any) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = canon(v)
	}
	return strings.Join(parts, ", ")
}

func canon(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func jsonEqual(a, b any) bool { return canon(a) == canon(b) }

func acceptsAll(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case map[string]any:
		for k := range v {
			if !annotations[k] {
				return false
			}
		}
		return true
	}
	return false
}

func isFalse(v any) bool { b, ok := v.(bool); return ok && !b }

func stringSet(v any) map[string]bool {
	set := map[string]bool{}
	if arr, ok := v.([]any); ok {
		for _, x := range arr {
			if s, ok := x.(string); ok {
				set[s] = true
			}
		}
	}
	return set
}

func sortedSet(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
