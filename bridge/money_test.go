package bridge

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

func TestMinorUnits(t *testing.T) {
	ok := []struct {
		in   any
		cur  string
		want int64
	}{
		{100.0, "USD", 10000},
		{12.5, "USD", 1250},
		{0.1, "USD", 10},
		{19.99, "usd", 1999},
		{"12.50", "USD", 1250},
		{json.Number("7.05"), "EUR", 705},
		{1500.0, "JPY", 1500},
		{"1500", "JPY", 1500},
		{1.234, "BHD", 1234},
		{0.0, "USD", 0},
		{int64(3), "EUR", 300},
		{999999999999.99, "USD", 99999999999999},
	}
	for _, c := range ok {
		got, err := MinorUnits(c.in, c.cur)
		if err != nil || got != c.want {
			t.Errorf("MinorUnits(%v, %s) = %d, %v; want %d", c.in, c.cur, got, err, c.want)
		}
	}
	bad := []struct {
		in  any
		cur string
	}{
		{12.345, "USD"},   // more decimals than USD has
		{"10.001", "EUR"}, // same, as a string
		{1.5, "JPY"},      // JPY has none
		{-5.0, "USD"},
		{"-5", "USD"},
		{math.NaN(), "USD"},
		{math.Inf(1), "USD"},
		{1e20, "USD"},
		{"1e3", "USD"},
		{"1,000", "USD"},
		{"", "USD"},
		{true, "USD"},
		{10.0, "XXX"},
		{10.0, ""},
		{"12.5", "SUI"},
	}
	for _, c := range bad {
		got, err := MinorUnits(c.in, c.cur)
		var ae *ucp.AmountError
		if !errors.As(err, &ae) {
			t.Errorf("MinorUnits(%v, %s) = %d, %v; want an *ucp.AmountError", c.in, c.cur, got, err)
		}
	}
}
