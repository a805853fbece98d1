package schemas

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// MaxFanOut bounds the schema nodes that validating one record may visit
// along one path into the record (the record, one of its members, one of
// that member's members...), counted over the $ref graph in the worst
// case. Real schemas visit tens to hundreds; a chain
// d_i = allOf[$ref d_(i+1), $ref d_(i+1)] doubles at each link and is
// refused at ten links. Work proportional to the record's size (every item
// of an array is visited) is bounded at validation time by the budget.
const MaxFanOut = 10000

// fanOut finds where validating could visit more than MaxFanOut schema
// nodes along one path of an instance, or returns "".
//
// It works on the compiled graph, so $ref, anchors, $id and every draft's
// keywords resolve exactly as the validator resolves them. A state is the
// nodes entered at one value of the instance, with how many times each
// is entered. Within a value, the in-place keywords ($ref, allOf, anyOf,
// oneOf, not, if/then/else, dependentSchemas, $dynamicRef to every node
// with its anchor) apply more nodes to the same value: their counts add up
// along the in-place graph, which is acyclic (a cycle is refused). The
// moving keywords (properties, patternProperties, additionalProperties,
// items, prefixItems, contains, propertyNames, unevaluated*) give the state
// of a child value, one per key: a member named in properties, any other
// member, an item at a prefixItems index, any other item, a member's name,
// decoded content. The cost of a path is the sum of its states' counts;
// the analysis takes the most costly path, with memoisation on states.
// A recursive schema (a $ref cycle through a moving keyword) is bounded by
// the instance's depth: a state that recurs on its own path repeats that
// path's levels, already summed once, so it ends the path (cost per level);
// a recursion that multiplies never recurs, since its counts keep
// growing, and passes the bound after finitely many levels.
func fanOut(root *jsonschema.Schema) string {
	g := buildGraph(root)
	order, cyc := g.topo()
	if cyc >= 0 {
		return fmt.Sprintf("%s: $ref cycle: validating would never end", g.nodes[cyc].ptr)
	}
	a := &analysis{g: g, rank: make([]int, len(g.nodes)), future: map[string]int64{}, byNode: map[int][]int{}}
	for i, n := range order {
		a.rank[n] = i
	}
	a.cost(map[int]int64{0: 1}, 0, 0)
	return a.refused
}

// maxAnalysis bounds the work of the analysis itself (node entries over
// all states): real schemas need a few thousand.
const maxAnalysis = 1 << 20

type analysis struct {
	g       *graph
	rank    []int            // topological rank of each node
	future  map[string]int64 // moving part -> the most the levels after it cost
	path    []map[int]int64  // the moving part of each state on the path
	byNode  map[int][]int    // node -> the path's states that enter it
	work    int64
	refused string
}

// moving is the part of a closed state that decides the states after it:
// the nodes with keywords into child values.
func (g *graph) moving(w map[int]int64) map[int]int64 {
	m := map[int]int64{}
	for n, c := range w {
		nd := &g.nodes[n]
		if len(nd.moves) > 0 || len(nd.props) > 0 || len(nd.patterns) > 0 || nd.addl >= 0 || len(nd.anyProp) > 0 {
			m[n] = c
		}
	}
	return m
}

// dominated reports whether an earlier state on the path enters every
// node m enters at least as often: then all that can follow m can follow
// that state too, and the path from there on only repeats what it has
// summed already.
func (a *analysis) dominated(m map[int]int64) bool {
	if len(m) == 0 {
		return false
	}
	// Only states that enter one of m's nodes can dominate it.
	var probe, fewest = -1, -1
	for n := range m {
		if k := len(a.byNode[n]); fewest < 0 || k < fewest {
			probe, fewest = n, k
		}
	}
	for _, i := range a.byNode[probe] {
		p := a.path[i]
		a.work += int64(len(m))
		ok := true
		for n, c := range m {
			if p[n] < c {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (a *analysis) push(m map[int]int64) {
	for n := range m {
		a.byNode[n] = append(a.byNode[n], len(a.path))
	}
	a.path = append(a.path, m)
}

func (a *analysis) pop() {
	m := a.path[len(a.path)-1]
	for n := range m {
		a.byNode[n] = a.byNode[n][:len(a.byNode[n])-1]
	}
	a.path = a.path[:len(a.path)-1]
}

// cost is the most that validating from state u (at depth, after sofar
// entries on the path to it) can add along one path.
func (a *analysis) cost(u map[int]int64, depth int, sofar int64) int64 {
	if a.refused != "" {
		return 0
	}
	reach, w, level := a.level(u)
	total := sat(sofar + level)
	if total > MaxFanOut {
		a.refused = a.g.explain(reach, w, depth, total)
		return level
	}
	// What follows a state depends on its moving part alone.
	m := a.g.moving(w)
	key := vecKey(m)
	if f, ok := a.future[key]; ok {
		if total+f > MaxFanOut {
			a.refused = a.g.explain(reach, w, depth, sat(total+f))
		}
		return sat(level + f)
	}
	if a.dominated(m) {
		return level // the path recurs: its levels are summed once
	}
	nexts, work := a.g.next(w)
	if a.work += int64(len(reach)) + work; a.work > maxAnalysis {
		a.refused = fmt.Sprintf("is too intricate to bound the cost of validating it (more than %d steps of analysis): use fewer $ref, allOf, anyOf and oneOf branches", maxAnalysis)
		return 0
	}
	a.push(m)
	var most int64
	for _, next := range nexts {
		most = max(most, a.cost(next, depth+1, total))
		if a.refused != "" {
			break
		}
	}
	a.pop()
	a.future[key] = most
	return sat(level + most)
}

// level closes state u under the in-place edges: the nodes entered at the
// value, in topological order, how often each is, and the sum.
func (a *analysis) level(u map[int]int64) ([]int, map[int]int64, int64) {
	reach := a.g.reach(u)
	slices.SortFunc(reach, func(x, y int) int { return a.rank[x] - a.rank[y] })
	w := make(map[int]int64, len(reach))
	for n, c := range u {
		w[n] = c
	}
	var level int64
	for _, n := range reach {
		c := w[n]
		level = sat(level + c)
		for _, m := range a.g.nodes[n].inPlace {
			w[m] = sat(w[m] + c)
		}
	}
	return reach, w, level
}

// sat keeps counts from overflowing: anything this large is refused.
func sat(x int64) int64 { return min(x, 1<<40) }

type fanNode struct {
	ptr     string
	anchor  string // $dynamicAnchor
	inPlace []int  // with multiplicity
	moves   []move // into the next level, but for members
	// Members: properties by name; patternProperties (applied to a
	// member whose name matches); additionalProperties (to one no
	// properties or pattern of this node names); unevaluatedProperties
	// (counted for every member).
	props    map[string]int
	patterns []patternEdge
	addl     int // -1: none
	anyProp  []int
}

type patternEdge struct {
	re jsonschema.Regexp
	to int
}

// move is a moving edge into an item or other value: its key ("i:3",
// "i*" for any item, "n" for a member's name, "c" for decoded content)
// and the node.
type move struct {
	key string
	to  int
}

type graph struct {
	nodes []fanNode
	id    map[*jsonschema.Schema]int
}

func buildGraph(root *jsonschema.Schema) *graph {
	g := &graph{id: map[*jsonschema.Schema]int{}}
	var dynamic, recursive []int
	var dynRefs []struct {
		from   int
		anchor string
	}
	var recRefs []int
	var add func(s *jsonschema.Schema) int
	add = func(s *jsonschema.Schema) int {
		if i, ok := g.id[s]; ok {
			return i
		}
		i := len(g.nodes)
		g.id[s] = i
		g.nodes = append(g.nodes, fanNode{ptr: pointerOf(s.Location), anchor: s.DynamicAnchor, addl: -1})
		if s.DynamicAnchor != "" {
			dynamic = append(dynamic, i)
		}
		if s.RecursiveAnchor {
			recursive = append(recursive, i)
		}
		in := func(c *jsonschema.Schema) {
			if c != nil {
				j := add(c)
				g.nodes[i].inPlace = append(g.nodes[i].inPlace, j)
			}
		}
		mv := func(key string, c *jsonschema.Schema) {
			if c != nil {
				j := add(c)
				g.nodes[i].moves = append(g.nodes[i].moves, move{key, j})
			}
		}
		in(s.Ref)
		in(s.RecursiveRef)
		if s.RecursiveRef != nil && s.RecursiveRef.RecursiveAnchor {
			recRefs = append(recRefs, i)
		}
		if s.DynamicRef != nil {
			in(s.DynamicRef.Ref)
			if s.DynamicRef.Anchor != "" {
				dynRefs = append(dynRefs, struct {
					from   int
					anchor string
				}{i, s.DynamicRef.Anchor})
			}
		}
		in(s.Not)
		for _, c := range s.AllOf {
			in(c)
		}
		for _, c := range s.AnyOf {
			in(c)
		}
		for _, c := range s.OneOf {
			in(c)
		}
		in(s.If)
		in(s.Then)
		in(s.Else)
		for _, k := range sortedKeysOf(s.DependentSchemas) {
			in(s.DependentSchemas[k])
		}
		for _, k := range sortedKeysOf(s.Dependencies) {
			if c, ok := s.Dependencies[k].(*jsonschema.Schema); ok {
				in(c)
			}
		}
		for _, k := range sortedKeysOf(s.Properties) {
			j := add(s.Properties[k])
			if g.nodes[i].props == nil {
				g.nodes[i].props = map[string]int{}
			}
			g.nodes[i].props[k] = j
		}
		for re, c := range s.PatternProperties {
			j := add(c)
			g.nodes[i].patterns = append(g.nodes[i].patterns, patternEdge{re, j})
		}
		if c, ok := s.AdditionalProperties.(*jsonschema.Schema); ok {
			g.nodes[i].addl = add(c)
		}
		if c := s.UnevaluatedProperties; c != nil {
			g.nodes[i].anyProp = append(g.nodes[i].anyProp, add(c))
		}
		mv("n", s.PropertyNames)
		switch items := s.Items.(type) {
		case *jsonschema.Schema:
			mv("i*", items)
		case []*jsonschema.Schema:
			for k, c := range items {
				mv("i:"+strconv.Itoa(k), c)
			}
		}
		if c, ok := s.AdditionalItems.(*jsonschema.Schema); ok {
			mv("i*", c)
		}
		for k, c := range s.PrefixItems {
			mv("i:"+strconv.Itoa(k), c)
		}
		mv("i*", s.Items2020)
		mv("i*", s.Contains)
		mv("i*", s.UnevaluatedItems)
		mv("c", s.ContentSchema)
		return i
	}
	add(root)
	// $dynamicRef and $recursiveRef resolve at validation time to a node
	// of the dynamic scope with the anchor: count every such node.
	// The reference resolves to one of them: each counts once, the
	// static target too.
	for _, r := range dynRefs {
		for _, j := range dynamic {
			if g.nodes[j].anchor == r.anchor && !slices.Contains(g.nodes[r.from].inPlace, j) {
				g.nodes[r.from].inPlace = append(g.nodes[r.from].inPlace, j)
			}
		}
	}
	for _, i := range recRefs {
		for _, j := range recursive {
			if !slices.Contains(g.nodes[i].inPlace, j) {
				g.nodes[i].inPlace = append(g.nodes[i].inPlace, j)
			}
		}
	}
	return g
}

func sortedKeysOf[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// pointerOf is the JSON pointer of a compiled schema's location ("/" for
// the root), or the location itself if it is in an embedded resource.
func pointerOf(loc string) string {
	if p, ok := strings.CutPrefix(loc, rootURL+"#"); ok {
		if p == "" {
			return "/"
		}
		return p
	}
	return loc
}

// topo orders the nodes so that every in-place edge goes forward; if the
// in-place edges have a cycle it returns a node on one.
func (g *graph) topo() ([]int, int) {
	indeg := make([]int, len(g.nodes))
	for _, n := range g.nodes {
		for _, m := range n.inPlace {
			indeg[m]++
		}
	}
	var order, queue []int
	for i, d := range indeg {
		if d == 0 {
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		order = append(order, n)
		for _, m := range g.nodes[n].inPlace {
			if indeg[m]--; indeg[m] == 0 {
				queue = append(queue, m)
			}
		}
	}
	if len(order) < len(g.nodes) {
		for i, d := range indeg {
			if d > 0 {
				return nil, i
			}
		}
	}
	return order, -1
}

// reach lists the nodes reachable from u's through in-place edges.
func (g *graph) reach(u map[int]int64) []int {
	seen := map[int]bool{}
	var out, stack []int
	for n := range u {
		stack = append(stack, n)
	}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
		stack = append(stack, g.nodes[n].inPlace...)
	}
	return out
}

// next lists the states of the child values, one per key: each member
// name that a properties keyword of the state names, any other member
// name (every pattern may match it), an item at a prefixItems index, any
// other item, a member's name, decoded content. Equal states are listed
// once.
func (g *graph) next(w map[int]int64) ([]map[int]int64, int64) {
	var work int64
	byKey := map[string]map[int]int64{}
	names := map[string]bool{}
	for n, c := range w {
		for _, mv := range g.nodes[n].moves {
			v := byKey[mv.key]
			if v == nil {
				v = map[int]int64{}
				byKey[mv.key] = v
			}
			v[mv.to] = sat(v[mv.to] + c)
		}
		for name := range g.nodes[n].props {
			names[name] = true
		}
	}
	var out []map[int]int64
	seen := map[string]bool{}
	add := func(v map[int]int64) {
		work += int64(len(v))
		if k := vecKey(v); len(v) > 0 && !seen[k] {
			seen[k] = true
			out = append(out, v)
		}
	}
	// member is the state of a member named name ("" with other:
	// a name no properties keyword gives, which any pattern may match).
	member := func(name string, other bool) map[int]int64 {
		v := map[int]int64{}
		for n, c := range w {
			nd := &g.nodes[n]
			named := false
			if j, ok := nd.props[name]; ok && !other {
				v[j] = sat(v[j] + c)
				named = true
			}
			for _, p := range nd.patterns {
				work++
				if other || p.re.MatchString(name) {
					v[p.to] = sat(v[p.to] + c)
					named = true
				}
			}
			if nd.addl >= 0 && (other || !named) {
				v[nd.addl] = sat(v[nd.addl] + c)
			}
			for _, j := range nd.anyProp {
				v[j] = sat(v[j] + c)
			}
		}
		return v
	}
	for _, name := range sortedKeysOf(names) {
		add(member(name, false))
	}
	add(member("", true))
	// An item with an index of its own also gets what any item gets.
	anyItem := byKey["i*"]
	add(anyItem)
	for _, k := range sortedKeysOf(byKey) {
		if !strings.HasPrefix(k, "i:") {
			continue
		}
		sum := make(map[int]int64, len(byKey[k])+len(anyItem))
		for n, c := range anyItem {
			sum[n] = c
		}
		for n, c := range byKey[k] {
			sum[n] = sat(sum[n] + c)
		}
		add(sum)
	}
	add(byKey["n"])
	add(byKey["c"])
	return out, work
}

func vecKey(u map[int]int64) string {
	keys := make([]int, 0, len(u))
	for n := range u {
		keys = append(keys, n)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, n := range keys {
		fmt.Fprintf(&b, "%d:%d,", n, u[n])
	}
	return b.String()
}

// explain names the place where the bound was passed: the smallest
// subschema that by itself, on one value, visits more than MaxFanOut
// nodes, or else the most entered node of the value the path's sum passed
// it at.
func (g *graph) explain(reach []int, w map[int]int64, depth int, total int64) string {
	ip := make(map[int]int64)
	var size func(n int) int64
	size = func(n int) int64 {
		if s, ok := ip[n]; ok {
			return s
		}
		s := int64(1)
		for _, m := range g.nodes[n].inPlace {
			s = sat(s + size(m))
		}
		ip[n] = s
		return s
	}
	best := -1
	for _, n := range reach {
		if s := size(n); s > MaxFanOut && (best < 0 || s < ip[best]) {
			best = n
		}
	}
	if best >= 0 {
		return fmt.Sprintf("%s: validating one value against it can visit %s schema nodes, more than the fan-out bound of %d: its $ref, allOf, anyOf and oneOf branches multiply",
			g.nodes[best].ptr, count(ip[best]), MaxFanOut)
	}
	hot := reach[0]
	for _, n := range reach {
		if w[n] > w[hot] || w[n] == w[hot] && g.nodes[n].ptr < g.nodes[hot].ptr {
			hot = n
		}
	}
	return fmt.Sprintf("%s: validating one record can visit %s schema nodes along one path, more than the fan-out bound of %d: at depth %d of the record this subschema is entered %s times (subschemas that apply to the same member multiply level by level)",
		g.nodes[hot].ptr, count(total), MaxFanOut, depth, count(w[hot]))
}

func count(n int64) string {
	if n >= 1<<40 {
		return "more than 10^12"
	}
	return strconv.FormatInt(n, 10)
}
