package shop

import (
	"testing"
	"time"
)

// TestReview10ExceptionOvernightCarriesIntoUnknownDay: a location that
// publishes only exception_hours (its regular schedule is unknown) with
// a New Year's Eve interval 20:00-02:00. The draft (common/location
// index.md, Evaluation): "If closes is earlier than opens, the interval
// continues into the next local date"; an exception takes authority only
// on dates it governs. At 01:00 on 1 January the interval is still open,
// but openAt returns false before it looks at the previous day, because
// the day itself is neither exceptional nor covered by known hours.
func TestReview10ExceptionOvernightCarriesIntoUnknownDay(t *testing.T) {
	sc, err := parseSchedule("Asia/Tokyo", nil, []ExceptionHour{
		{Title: "New Year's Eve", ValidFrom: "2026-12-31", ValidThrough: "2026-12-31", Opens: "20:00", Closes: "02:00"},
	})
	if err != nil {
		t.Fatal(err)
	}
	z, _ := time.LoadLocation("Asia/Tokyo")
	if !sc.openAt(time.Date(2026, 12, 31, 23, 0, 0, 0, z)) {
		t.Fatal("closed at 23:00 on the 31st (sanity)")
	}
	if at := time.Date(2027, 1, 1, 1, 0, 0, 0, z); !sc.openAt(at) {
		t.Errorf("openAt(%s) = false: the 20:00-02:00 exception interval of 2026-12-31 runs past midnight into a date no exception governs", at)
	}
}
