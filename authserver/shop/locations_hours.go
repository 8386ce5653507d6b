package shop

import (
	"errors"
	"fmt"
	"sync"
	"time"
	// The zone database travels in the binary: opening hours are
	// evaluated in each location's IANA zone, on hosts without
	// /usr/share/zoneinfo too, and the same way on every host.
	_ "time/tzdata"
)

// DailyHour is a regular weekly interval (daily_hour.json): it begins on
// Day at Opens and ends at Closes, local civil time in the location's
// zone. Closes before Opens runs into the next day; "00:00"-"23:59" is
// the whole day.
type DailyHour struct {
	Day    string `json:"day"` // monday … sunday
	Opens  string `json:"opens"`
	Closes string `json:"closes"`
}

// ExceptionHour replaces the regular schedule on the local dates from
// ValidFrom to ValidThrough, inclusive (exception_hour.json): a timed
// interval, or a full closure when Opens and Closes are both absent.
type ExceptionHour struct {
	Title        string `json:"title,omitempty"`
	ValidFrom    string `json:"valid_from"`
	ValidThrough string `json:"valid_through"`
	Opens        string `json:"opens,omitempty"`
	Closes       string `json:"closes,omitempty"`
}

// The UCP day identifiers, by time.Weekday.
var weekdays = [7]string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

const dateLayout = "2006-01-02"

// clock parses "HH:MM" (00:00 to 23:59) into minutes after midnight.
func clock(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	d := func(c byte) int { return int(c - '0') }
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	h, m := d(s[0])*10+d(s[1]), d(s[3])*10+d(s[4])
	if h > 23 || m > 59 {
		return 0, false
	}
	return h*60 + m, true
}

// interval is an opening interval in minutes after local midnight (the
// location's wall clock), on the local date it begins.
type interval struct{ opens, closes int }

func (iv interval) wholeDay() bool  { return iv.opens == 0 && iv.closes == 23*60+59 }
func (iv interval) overnight() bool { return iv.closes < iv.opens && !iv.wholeDay() }

// covers reports whether iv, beginning on the local date of the instant,
// covers the instant's time of day (in minutes, fractions included):
// open at opens, closed at closes.
func (iv interval) covers(t float64) bool {
	switch {
	case iv.wholeDay():
		return true
	case iv.overnight():
		return t >= float64(iv.opens)
	default:
		return t >= float64(iv.opens) && t < float64(iv.closes)
	}
}

// zones caches loaded time zones by name.
var zones sync.Map

func zone(name string) (*time.Location, error) {
	if z, ok := zones.Load(name); ok {
		return z.(*time.Location), nil
	}
	if name == "" || name == "Local" {
		return nil, errors.New("no IANA time zone")
	}
	z, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	zones.Store(name, z)
	return z, nil
}

// schedule is a location's hours, parsed.
type schedule struct {
	zone   *time.Location
	weekly [7][]interval // by time.Weekday; nil hours: unknown
	known  bool          // hours were given
	except []exception
}

type exception struct {
	from, through string // YYYY-MM-DD, which compare as dates
	iv            *interval
}

// parseSchedule reads a location's hours and exceptions, refusing what
// the draft calls invalid: a bad zone, day, time or date, equal opens and
// closes, half an interval, a range that ends before it begins, and
// intersecting ranges that are not identical or whose identical bounds
// hold a full closure next to anything else.
func parseSchedule(tz string, hours []DailyHour, exc []ExceptionHour) (*schedule, error) {
	if len(hours) == 0 && len(exc) == 0 {
		return &schedule{}, nil
	}
	z, err := zone(tz)
	if err != nil {
		return nil, fmt.Errorf("timezone %q: %v", tz, err)
	}
	sc := &schedule{zone: z, known: hours != nil}
	for i, h := range hours {
		day := -1
		for d, name := range weekdays {
			if name == h.Day {
				day = d
			}
		}
		iv, err := parseInterval(h.Opens, h.Closes)
		if day < 0 || err != nil || iv == nil {
			return nil, fmt.Errorf("hours[%d]: %v", i, cmpOr(errText(err), "day must be monday … sunday and opens/closes HH:MM"))
		}
		sc.weekly[day] = append(sc.weekly[day], *iv)
	}
	for i, e := range exc {
		from, err1 := time.Parse(dateLayout, e.ValidFrom)
		through, err2 := time.Parse(dateLayout, e.ValidThrough)
		if err1 != nil || err2 != nil || through.Before(from) {
			return nil, fmt.Errorf("exception_hours[%d]: valid_from and valid_through are YYYY-MM-DD, in order", i)
		}
		iv, err := parseInterval(e.Opens, e.Closes)
		if err != nil {
			return nil, fmt.Errorf("exception_hours[%d]: %v", i, err)
		}
		for j, o := range sc.except {
			if e.ValidFrom > o.through || e.ValidThrough < o.from {
				continue // disjoint
			}
			if e.ValidFrom != o.from || e.ValidThrough != o.through || iv == nil || o.iv == nil {
				return nil, fmt.Errorf("exception_hours[%d] intersects exception_hours[%d]: only timed entries with identical bounds may share dates", i, j)
			}
		}
		sc.except = append(sc.except, exception{from: e.ValidFrom, through: e.ValidThrough, iv: iv})
	}
	return sc, nil
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// parseInterval reads opens and closes: nil for neither (a closure).
func parseInterval(opens, closes string) (*interval, error) {
	if opens == "" && closes == "" {
		return nil, nil
	}
	o, ok1 := clock(opens)
	c, ok2 := clock(closes)
	if !ok1 || !ok2 {
		return nil, errors.New("opens and closes are both HH:MM (00:00 to 23:59)")
	}
	if o == c {
		return nil, errors.New("opens and closes are equal")
	}
	return &interval{o, c}, nil
}

// exceptional returns the intervals of the exceptions governing the local
// date (nil and false when none does).
func (sc *schedule) exceptional(date string) ([]interval, bool) {
	var out []interval
	found := false
	for _, e := range sc.except {
		if date >= e.from && date <= e.through {
			found = true
			if e.iv != nil {
				out = append(out, *e.iv)
			}
		}
	}
	return out, found
}

// intervalsOn returns the intervals beginning on a local date, and
// whether the date is governed by an exception.
func (sc *schedule) intervalsOn(date time.Time) ([]interval, bool) {
	if ivs, ok := sc.exceptional(date.Format(dateLayout)); ok {
		return ivs, true
	}
	return sc.weekly[date.Weekday()], false
}

// openAt reports whether the schedule is open at instant t (the UCP
// location draft's evaluation): t becomes the location's local date and
// wall-clock time; an interval beginning that day may cover it, or one
// that began the day before and runs past midnight, unless the day is
// governed by an exception (which takes over at local midnight). An
// unknown schedule (no hours, no exception for the day) is not open.
// Wall-clock labels skipped by a daylight-saving gap match no instant;
// both instants of a fold get the same answer.
func (sc *schedule) openAt(t time.Time) bool {
	if sc == nil || sc.zone == nil {
		return false
	}
	lt := t.In(sc.zone)
	y, m, d := lt.Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC) // the civil date, zone-free
	minute := float64(lt.Hour()*60+lt.Minute()) + (float64(lt.Second())+float64(lt.Nanosecond())/1e9)/60
	// An unknown day (no weekly hours, no exception) has no intervals of
	// its own, but yesterday's exception may still run past midnight into
	// it: that is checked below either way.
	ivs, exceptional := sc.intervalsOn(today)
	for _, iv := range ivs {
		if iv.covers(minute) {
			return true
		}
	}
	if exceptional {
		return false
	}
	prev, prevExceptional := sc.intervalsOn(today.AddDate(0, 0, -1))
	if !prevExceptional && !sc.known {
		return false
	}
	for _, iv := range prev {
		if iv.overnight() && minute < float64(iv.closes) {
			return true
		}
	}
	return false
}

// current drops the exceptions that can no longer affect the schedule at
// now or later: those that ended before yesterday, local time (an
// interval of the last day may run past midnight). The draft asks a
// business to omit them.
func currentExceptions(exc []ExceptionHour, tz string, now time.Time) []ExceptionHour {
	z, err := zone(tz)
	if err != nil || len(exc) == 0 {
		return exc
	}
	yesterday := now.In(z).AddDate(0, 0, -1).Format(dateLayout)
	var out []ExceptionHour
	for _, e := range exc {
		if e.ValidThrough >= yesterday {
			out = append(out, e)
		}
	}
	return out
}
