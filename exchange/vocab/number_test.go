package vocab

import (
	"errors"
	"math/big"
	"strings"
	"testing"
)

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1e2", "100", 0},
		{"1.0", "1", 0},
		{"-0", "0", 0},
		{"-0.0e-7", "0E+3", 0},
		{"0", "0.000", 0},
		{"12345678901234567890", "12345678901234567889", 1},
		{"12345678901234567889", "12345678901234567890", -1},
		{"0.1", "0.10000000000000000000000001", -1},
		{"-0.1", "-0.10000000000000000000000001", 1},
		{"100", "1e3", -1},
		{"10.5", "1.05e1", 0},
		{"1200", "12e2", 0},
		{"0.0012", "12e-4", 0},
		{"-1", "1", -1},
		{"-1", "0", -1},
		{"0", "1e-400", -1},
		{"1e999999", "1e999998", 1},
		{"1e999999", "10e999998", 0},
		{"-1e999999", "-1e999998", -1},
		{"1e-999999", "0", 1},
		{"1e-999999", "1e-999998", -1},
		{"1e1000000000000000000000", "1e999999999999999999999", 1},
		{"10e999999999999999999999", "1e1000000000000000000000", 0},
		{"1e1000000000000000000000", "99999999999999999999999999", 1},
		{"1e-1000000000000000000000", "1e-18", -1},
		{"5", "5.00000000000000000000000000000000000000001", -1},
	}
	for _, tt := range tests {
		got, ok := CompareNumbers(tt.a, tt.b)
		if !ok || got != tt.want {
			t.Errorf("CompareNumbers(%s, %s) = %d, %v; want %d", tt.a, tt.b, got, ok, tt.want)
		}
		if back, _ := CompareNumbers(tt.b, tt.a); back != -tt.want {
			t.Errorf("CompareNumbers(%s, %s) = %d; want %d", tt.b, tt.a, back, -tt.want)
		}
	}
	for _, bad := range []string{"", "-", "01", "1.", ".5", "1e", "1e+", "+1", "1x", "0x10", "NaN", "1.5.2", "--1"} {
		if _, ok := ParseNumber(bad); ok {
			t.Errorf("ParseNumber(%q) ok, want not a number", bad)
		}
		if err := CheckNumber(bad); err == nil {
			t.Errorf("CheckNumber(%q) = nil, want not a number", bad)
		}
	}
}

func TestIsInt(t *testing.T) {
	for s, want := range map[string]bool{
		"0": true, "-0": true, "41": true, "41.0": true, "4.1e1": true, "1e2": true, "1.5": false,
		"15e-1": false, "150e-1": true, "1e-400": false, "1e999999": true, "1e-999999": false,
		"1e1000000000000000000000": true, "1e-1000000000000000000000": false, "0.0e-5": true,
	} {
		n, ok := ParseNumber(s)
		if !ok || n.IsInt() != want {
			t.Errorf("%s: IsInt = %v (ok %v), want %v", s, n.IsInt(), ok, want)
		}
	}
}

func TestCheck(t *testing.T) {
	long := strings.Repeat("7", MaxNumberDigits+1)
	tests := []struct {
		in   string
		want string // "" or error substring
	}{
		{"1e400", ""},
		{"-1E-400", ""},
		{"1e+0400", ""}, // leading zeros of the exponent do not count
		{"4.9406564584124654e-324", ""},
		{strings.Repeat("9", MaxNumberDigits), ""},
		{"1e401", "exponent 401, beyond the bound of ±400"},
		{"1e999999", "number 1e999999 has the exponent 999999, beyond the bound of ±400"},
		{"-2.5e-999999", "exponent -999999"},
		{long, "has 101 digits, more than the bound of 100"},
		{"0." + strings.Repeat("0", MaxNumberDigits), "has 101 digits"},
		{"1e" + strings.Repeat("9", 5000), "(5002 characters)"},
	}
	for _, tt := range tests {
		err := CheckNumber(tt.in)
		if tt.want == "" {
			if err != nil {
				t.Errorf("CheckNumber(%.30s) = %v, want nil", tt.in, err)
			}
			continue
		}
		var be *NumberBoundError
		if !errors.As(err, &be) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CheckNumber(%.30s) = %v, want a bound error with %q", tt.in, err, tt.want)
		}
		if len(err.Error()) > 200 {
			t.Errorf("CheckNumber(%.30s): error of %d bytes, want it short", tt.in, len(err.Error()))
		}
	}
}

// TestCompareDoesNotExpand: comparing 1e999999 with its neighbours costs
// what comparing 1 with 2 does: nothing is allocated. math/big would make
// a 3.3-million-bit integer of each (about 400 KB).
func TestCompareDoesNotExpand(t *testing.T) {
	pairs := [][2]string{{"1e999999", "1e999998"}, {"-9.99e-999999", "1e999999"}, {"1.000000000000000000001e999999", "1e999999"}, {"1", "2"}}
	for _, p := range pairs {
		allocs := testing.AllocsPerRun(100, func() {
			if _, ok := CompareNumbers(p[0], p[1]); !ok {
				t.Fatal("not a number")
			}
		})
		if allocs != 0 {
			t.Errorf("CompareNumbers(%s, %s): %.0f allocations, want 0", p[0], p[1], allocs)
		}
	}
}

// FuzzCompareAgainstRat is differential: on texts short enough for math/big
// to expand cheaply, Compare and IsInt agree with big.Rat.
func FuzzCompareAgainstRat(f *testing.F) {
	for _, p := range [][2]string{{"1e2", "100"}, {"1.0", "1"}, {"-0", "0"}, {"12345678901234567890", "12345678901234567889"}, {"0.001", "1e-3"}, {"-5.5e1", "-55"}, {"7", "7.0000001"}, {"0e5", "-0.0"}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if len(a) > 60 || len(b) > 60 || CheckNumber(a) != nil || CheckNumber(b) != nil {
			return // math/big would expand a large exponent for a long time
		}
		na, oka := ParseNumber(a)
		nb, okb := ParseNumber(b)
		if !oka || !okb {
			return
		}
		ra, _ := new(big.Rat).SetString(a)
		rb, _ := new(big.Rat).SetString(b)
		if ra == nil || rb == nil {
			t.Fatalf("Parse accepts %q and %q, big.Rat does not", a, b)
		}
		if got, want := na.Cmp(nb), ra.Cmp(rb); got != want {
			t.Fatalf("CompareNumbers(%s, %s) = %d, big.Rat says %d", a, b, got, want)
		}
		if got, want := na.IsInt(), ra.IsInt(); got != want {
			t.Fatalf("IsInt(%s) = %v, big.Rat says %v", a, got, want)
		}
		if got, want := na.Sign(), ra.Sign(); got != want {
			t.Fatalf("Sign(%s) = %d, big.Rat says %d", a, got, want)
		}
	})
}
