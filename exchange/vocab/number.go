// This file owns what the hub does with the text of a JSON number: it
// bounds its size (Check) and compares two numbers exactly without
// expanding them (Parse, Number.Cmp). Expanding is what math/big does: the
// text 1e999999 becomes an integer of 3.3 million bits, about 29 ms of CPU
// for each time it is read. Here a number is its sign, its significant
// digits (a slice of the text) and a decimal exponent, and two numbers are
// compared digit by digit, so the work is linear in the texts and nothing
// is allocated (except for an exponent written with more than 18 digits).

package vocab

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// Bounds on a number text. They hold every float64 (17 significant digits,
// exponents down to -324) and every decimal a database column holds in
// practice, and keep what math/big makes of a bounded number small.
const (
	// MaxNumberDigits bounds the digits of a number before its exponent
	// (integer and fraction part together, leading zeros included).
	MaxNumberDigits = 100
	// MaxNumberExponent bounds the magnitude of the exponent written after e.
	MaxNumberExponent = 400
)

// NumberBoundError says that a number text is beyond a bound.
type NumberBoundError struct {
	Text     string // the number, cut to a readable length
	Digits   int    // its digits before the exponent
	Exponent string // its exponent as written (sign and digits), or ""
}

func (e *NumberBoundError) Error() string {
	if e.Digits > MaxNumberDigits {
		return fmt.Sprintf("number %s has %d digits, more than the bound of %d", e.Text, e.Digits, MaxNumberDigits)
	}
	return fmt.Sprintf("number %s has the exponent %s, beyond the bound of ±%d", e.Text, e.Exponent, MaxNumberExponent)
}

// parts splits a JSON number text into its sign, integer digits, fraction
// digits, exponent sign and exponent digits. ok is false when s is not a
// JSON number.
func numberParts(s string) (neg bool, ip, fp string, eneg bool, ep string, ok bool) {
	i := 0
	if i < len(s) && s[i] == '-' {
		neg = true
		i++
	}
	run := func() string {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return s[j:i]
	}
	if ip = run(); ip == "" || len(ip) > 1 && ip[0] == '0' {
		return
	}
	if i < len(s) && s[i] == '.' {
		i++
		if fp = run(); fp == "" {
			return
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		if ep = run(); ep == "" {
			return
		}
	}
	ok = i == len(s)
	return
}

// Check reports whether the number text s is within the bounds: at most
// MaxNumberDigits digits before the exponent and an exponent within
// ±MaxNumberExponent. It reads s once and allocates only for its error.
func CheckNumber(s string) error {
	_, ip, fp, eneg, ep, ok := numberParts(s)
	if !ok {
		return fmt.Errorf("%s is not a JSON number", cutZeros(s))
	}
	if n := len(ip) + len(fp); n > MaxNumberDigits {
		return &NumberBoundError{Text: cutZeros(s), Digits: n}
	}
	e := strings.TrimLeft(ep, "0")
	if len(e) > len(strconv.Itoa(MaxNumberExponent)) || e != "" && mustAtoi(e) > MaxNumberExponent {
		sign := ""
		if eneg {
			sign = "-"
		}
		return &NumberBoundError{Text: cutZeros(s), Digits: len(ip) + len(fp), Exponent: sign + cutZeros(e)}
	}
	return nil
}

func mustAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// cut shortens a long number for an error message.
func cutZeros(s string) string {
	if len(s) <= 24 {
		return s
	}
	return s[:20] + "…(" + strconv.Itoa(len(s)) + " characters)"
}

// Number is a parsed JSON number: 0.d₁d₂…dₙ × 10^exp with d₁ ≠ 0 and dₙ ≠ 0,
// the digits being hi followed by lo (two slices of the text, so that a
// fraction's digits need not be copied past its point). Zero has no digits
// and no sign. The zero Number is zero.
type Number struct {
	neg    bool
	hi, lo string
	exp    int64
	bigExp *big.Int // the exponent, when the text's has more than 18 digits
}

// Parse parses a JSON number text (json.Number's). It does not expand the
// number, and allocates only for an exponent of more than 18 digits.
func ParseNumber(s string) (Number, bool) {
	neg, ip, fp, eneg, ep, ok := numberParts(s)
	if !ok {
		return Number{}, false
	}
	var n Number
	ip = strings.TrimLeft(ip, "0")
	fp = strings.TrimRight(fp, "0")
	var shift int64 // where the point goes, counted from the first significant digit
	switch {
	case ip != "" && fp == "":
		n.hi, shift = strings.TrimRight(ip, "0"), int64(len(ip))
	case ip != "":
		n.hi, n.lo, shift = ip, fp, int64(len(ip))
	default:
		t := strings.TrimLeft(fp, "0")
		n.hi, shift = t, -int64(len(fp)-len(t))
	}
	if n.hi == "" {
		return Number{}, true // zero, whatever its sign and exponent
	}
	n.neg = neg
	ep = strings.TrimLeft(ep, "0")
	if len(ep) <= 18 {
		e := int64(0)
		for i := 0; i < len(ep); i++ {
			e = e*10 + int64(ep[i]-'0')
		}
		if eneg {
			e = -e
		}
		n.exp = e + shift // |e| < 10^18 and |shift| < len(s): no overflow
		return n, true
	}
	e, _ := new(big.Int).SetString(ep, 10)
	if eneg {
		e.Neg(e)
	}
	n.bigExp = e.Add(e, big.NewInt(shift))
	return n, true
}

// Sign is -1, 0 or +1.
func (n Number) Sign() int {
	switch {
	case n.hi == "":
		return 0
	case n.neg:
		return -1
	}
	return 1
}

// IsInt reports whether n is an integer.
func (n Number) IsInt() bool {
	if n.hi == "" {
		return true
	}
	digits := int64(len(n.hi) + len(n.lo))
	if n.bigExp != nil {
		return n.bigExp.Sign() > 0 // beyond 10^18: more than any text's digits
	}
	return n.exp >= digits
}

// Cmp compares n and m: -1 if n < m, 0 if they are equal, +1 if n > m.
func (n Number) Cmp(m Number) int {
	sn, sm := n.Sign(), m.Sign()
	if sn != sm {
		return cmpInt(int64(sn), int64(sm))
	}
	if sn == 0 {
		return 0
	}
	c := cmpExp(n, m)
	if c == 0 {
		c = cmpDigits(n, m)
	}
	return sn * c
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpExp(n, m Number) int {
	if n.bigExp == nil && m.bigExp == nil {
		return cmpInt(n.exp, m.exp)
	}
	return n.exponent().Cmp(m.exponent())
}

func (n Number) exponent() *big.Int {
	if n.bigExp != nil {
		return n.bigExp
	}
	return big.NewInt(n.exp)
}

// cmpDigits compares the digit strings as fractions 0.d₁d₂…: byte by
// byte, the shorter one smaller when it is a prefix (neither has
// trailing zeros).
func cmpDigits(n, m Number) int {
	ln, lm := len(n.hi)+len(n.lo), len(m.hi)+len(m.lo)
	for i := 0; i < ln && i < lm; i++ {
		a, b := n.digit(i), m.digit(i)
		if a != b {
			return cmpInt(int64(a), int64(b))
		}
	}
	return cmpInt(int64(ln), int64(lm))
}

func (n Number) digit(i int) byte {
	if i < len(n.hi) {
		return n.hi[i]
	}
	return n.lo[i-len(n.hi)]
}

// Compare compares two JSON number texts; ok is false when either is not
// one.
func CompareNumbers(a, b string) (c int, ok bool) {
	na, ok1 := ParseNumber(a)
	nb, ok2 := ParseNumber(b)
	if !ok1 || !ok2 {
		return 0, false
	}
	return na.Cmp(nb), true
}
