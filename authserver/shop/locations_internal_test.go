package shop

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// TestGeodesicMetresVincenty checks the WGS 84 distance against
// Vincenty's own worked example (Survey Review 1975: Flinders Peak to
// Buninyong, 54 972.271 m) and against the Artos SDK's geodesicMetres for
// the seeded shops, a quarter of the equator, pole to pole and a pair
// across the 180° meridian. A spherical formula (Haversine) misses the
// first by tens of metres.
func TestGeodesicMetresVincenty(t *testing.T) {
	t.Parallel()
	dms := func(d, m, s float64) float64 { return math.Copysign(math.Abs(d)+m/60+s/3600, d) }
	kyotoStation := Geo{34.9858, 135.7588}
	gion, arashiyama := Geo{35.0037, 135.7750}, Geo{35.0158, 135.6737}
	for _, c := range []struct {
		name string
		a, b Geo
		want float64 // metres
	}{
		{"Flinders Peak to Buninyong", Geo{dms(-37, 57, 3.72030), dms(144, 25, 29.52440)}, Geo{dms(-37, 39, 10.15610), dms(143, 55, 35.38390)}, 54972.2711},
		{"Kyoto Station to Gion", kyotoStation, gion, 2476.0593},
		{"Kyoto Station to Arashiyama", kyotoStation, arashiyama, 8451.4708},
		{"Gion to Arashiyama", gion, arashiyama, 9343.3290},
		{"Tokyo Station to Gion", Geo{35.6812, 139.7671}, gion, 370580.0587},
		{"a quarter of the equator", Geo{0, 0}, Geo{0, 90}, 10018754.1714},
		{"pole to pole", Geo{90, 0}, Geo{-90, 0}, halfMeridian},
		{"across the 180° meridian", Geo{10, 179.9}, Geo{10, -179.9}, 21927.8725},
		{"the same point", gion, gion, 0},
	} {
		got, ok := geodesicMetres(c.a, c.b)
		if !ok || math.Abs(got-c.want) > 1e-3 {
			t.Errorf("%s: %.4f m (ok %v), want %.4f m", c.name, got, ok, c.want)
		}
		if back, _ := geodesicMetres(c.b, c.a); math.Abs(back-got) > 1e-6 {
			t.Errorf("%s: %.6f one way, %.6f the other", c.name, got, back)
		}
	}
	// Nearly antipodal points, where Vincenty's iteration fails: no
	// answer rather than a wrong one (the SDK says 0 m).
	for _, b := range []Geo{{-35.0037, -44.2250}, {0.5, 179.5}, {0, 180}} {
		a := gion
		if b.Latitude == 0.5 || b.Longitude == 180 {
			a = Geo{0, 0}
		}
		if d, ok := geodesicMetres(a, b); ok && d < 19_900_000 {
			t.Errorf("%v to %v: %.1f m claimed", a, b, d)
		}
	}
}

// TestDistanceRelationInclusiveUnrounded: a location exactly max metres
// away matches, one a millimetre further does not (the draft compares the
// unrounded length); a centre the formula cannot handle is an error
// unless the radius covers the Earth.
func TestDistanceRelationInclusiveUnrounded(t *testing.T) {
	t.Parallel()
	gion := &StoreLocation{Location: Location{ID: "gion", Name: "Gion", Geo: &Geo{35.0037, 135.7750}}}
	center := Geo{34.9858, 135.7588}
	d, _ := geodesicMetres(center, *gion.Geo)
	for _, c := range []struct {
		max  float64
		want bool
	}{{d, true}, {math.Nextafter(d, 0), false}, {d + 1e-3, true}, {0, false}} {
		m := &matcher{q: &locationQuery{center: &center, max: c.max}}
		if ok, got, err := m.match(gion); ok != c.want || err != nil || (ok && got != d) {
			t.Errorf("max %.10f (distance %.10f): match %v %v, want %v", c.max, d, ok, err, c.want)
		}
	}
	antipode := Geo{-35.0037, -44.2250}
	// Where Vincenty cannot converge, the great circle settles every
	// radius outside its 1% band: 1 km is plainly not 20,000 km away.
	m := &matcher{q: &locationQuery{center: &antipode, max: 1000}}
	if ok, _, err := m.match(gion); ok || err != nil {
		t.Errorf("nearly antipodal centre, 1 km: %v %v", ok, err)
	}
	m.q.max = 19_950_000 // inside the band: cannot be judged
	if _, _, err := m.match(gion); err != errDistanceUnknown {
		t.Errorf("nearly antipodal centre, a radius in the uncertain band: %v", err)
	}
	m.q.max = halfMeridian
	if ok, _, err := m.match(gion); !ok || err != nil {
		t.Errorf("nearly antipodal centre, a radius covering the Earth: %v %v", ok, err)
	}
}

func mustSchedule(t *testing.T, tz string, hours []DailyHour, exc []ExceptionHour) *schedule {
	t.Helper()
	sc, err := parseSchedule(tz, hours, exc)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// TestScheduleOpenAt walks the draft's evaluation rules in a zone with
// daylight saving: split shifts, intervals past midnight, the whole-day
// pair, exceptions replacing the week (and cutting a carried interval at
// midnight), unknown hours, the gap and the fold.
func TestScheduleOpenAt(t *testing.T) {
	t.Parallel()
	sc := mustSchedule(t, "America/New_York", []DailyHour{
		{Day: "tuesday", Opens: "09:00", Closes: "12:00"}, {Day: "tuesday", Opens: "13:00", Closes: "21:00"},
		{Day: "thursday", Opens: "22:00", Closes: "02:00"},
		{Day: "saturday", Opens: "00:00", Closes: "23:59"},
		{Day: "sunday", Opens: "01:00", Closes: "04:00"},
	}, []ExceptionHour{
		{Title: "Thanksgiving", ValidFrom: "2026-11-26", ValidThrough: "2026-11-26"},
		{ValidFrom: "2026-12-04", ValidThrough: "2026-12-05", Opens: "10:00", Closes: "11:00"},
		{ValidFrom: "2026-12-12", ValidThrough: "2026-12-12", Opens: "10:00", Closes: "11:00"},
		{ValidFrom: "2026-12-12", ValidThrough: "2026-12-12", Opens: "15:00", Closes: "16:00"},
	})
	for _, c := range []struct {
		at   string
		want bool
	}{
		{"2026-11-17T09:00:00-05:00", true},      // Tuesday: open at opens
		{"2026-11-17T11:59:59.999-05:00", true},  // just before closes
		{"2026-11-17T12:00:00-05:00", false},     // closed at closes
		{"2026-11-17T12:30:00-05:00", false},     // between the split shifts
		{"2026-11-17T13:00:00-05:00", true},      // the second shift
		{"2026-11-17T18:00:00Z", true},           // the same instant in another notation: 13:00 local
		{"2026-11-18T10:00:00-05:00", false},     // Wednesday: no hours
		{"2026-11-19T23:00:00-05:00", true},      // Thursday 22:00-02:00, before midnight
		{"2026-11-20T01:59:00-05:00", true},      // … carried into Friday
		{"2026-11-20T02:00:00-05:00", false},     // … until 02:00
		{"2026-11-20T10:00:00-05:00", false},     // Friday: nothing begins
		{"2026-11-21T23:59:30-05:00", true},      // Saturday 00:00-23:59 is the whole day
		{"2026-11-22T00:30:00-05:00", false},     // Sunday 00:30: Saturday's whole day does not run on
		{"2026-11-26T23:00:00-05:00", false},     // Thanksgiving (a Thursday): closed, Thursday night too
		{"2026-11-27T01:00:00-05:00", false},     // … so nothing carries into Friday
		{"2026-12-05T01:00:00-05:00", false},     // Saturday under an exception: the week's whole day gives way
		{"2026-12-05T10:30:00-05:00", true},      // … to the exception's interval
		{"2026-12-03T23:30:00-05:00", true},      // Thursday night before an exception day
		{"2026-12-04T00:30:00-05:00", false},     // … cut at midnight by the exception
		{"2026-12-04T10:30:00-05:00", true},      // the exception's own interval
		{"2026-12-12T15:30:00-05:00", true},      // split shift of identical exception bounds
		{"2026-12-12T12:00:00-05:00", false},     // between them
		{"2027-03-14T01:59:59-05:00", true},      // the DST gap: the last second before the jump
		{"2027-03-14T07:00:00Z", true},           // … and the next, 03:00 EDT (02:xx never happens)
		{"2027-03-14T04:00:00-04:00", false},     // closes at 04:00 EDT
		{"2026-11-01T01:30:00-04:00", true},      // the fold, first 01:30 (EDT)
		{"2026-11-01T01:30:00-05:00", true},      // the fold, second 01:30 (EST): the same answer
		{"2026-11-01T04:00:00-05:00", false},     // closes at 04:00
		{"2026-11-24T20:59:59.999999999Z", true}, // Tuesday 15:59 local
	} {
		at, err := time.Parse(time.RFC3339Nano, c.at)
		if err != nil {
			t.Fatal(err)
		}
		if got := sc.openAt(at); got != c.want {
			t.Errorf("%s (%s local): open %v, want %v", c.at, at.In(sc.zone).Format("Mon 2006-01-02 15:04:05 MST"), got, c.want)
		}
	}
	// Unknown hours are never open; exceptions alone say when they are.
	unknown := mustSchedule(t, "Asia/Tokyo", nil, []ExceptionHour{{ValidFrom: "2026-12-31", ValidThrough: "2026-12-31", Opens: "10:00", Closes: "15:00"}})
	for at, want := range map[string]bool{"2026-12-30T03:00:00Z": false, "2026-12-31T03:00:00Z": true} {
		tm, _ := time.Parse(time.RFC3339, at)
		if unknown.openAt(tm) != want {
			t.Errorf("no weekly hours, %s: want %v", at, want)
		}
	}
	if (&schedule{}).openAt(time.Now()) || (*schedule)(nil).openAt(time.Now()) {
		t.Error("a location without hours is open")
	}
}

// TestParseScheduleRefusesInvalid: what the draft calls invalid never
// reaches a store's settings.
func TestParseScheduleRefusesInvalid(t *testing.T) {
	t.Parallel()
	ok := []DailyHour{{Day: "monday", Opens: "09:00", Closes: "17:00"}}
	for name, c := range map[string]struct {
		tz    string
		hours []DailyHour
		exc   []ExceptionHour
	}{
		"no zone":                 {"", ok, nil},
		"unknown zone":            {"Mars/Olympus_Mons", ok, nil},
		"day":                     {"Asia/Tokyo", []DailyHour{{Day: "Monday", Opens: "09:00", Closes: "17:00"}}, nil},
		"equal opens and closes":  {"Asia/Tokyo", []DailyHour{{Day: "monday", Opens: "00:00", Closes: "00:00"}}, nil},
		"24:00":                   {"Asia/Tokyo", []DailyHour{{Day: "monday", Opens: "09:00", Closes: "24:00"}}, nil},
		"9:00":                    {"Asia/Tokyo", []DailyHour{{Day: "monday", Opens: "9:00", Closes: "17:00"}}, nil},
		"half an exception":       {"Asia/Tokyo", ok, []ExceptionHour{{ValidFrom: "2026-01-01", ValidThrough: "2026-01-01", Opens: "10:00"}}},
		"range backwards":         {"Asia/Tokyo", ok, []ExceptionHour{{ValidFrom: "2026-01-02", ValidThrough: "2026-01-01"}}},
		"not a date":              {"Asia/Tokyo", ok, []ExceptionHour{{ValidFrom: "2026-1-2", ValidThrough: "2026-01-03"}}},
		"intersecting ranges":     {"Asia/Tokyo", ok, []ExceptionHour{{ValidFrom: "2026-01-01", ValidThrough: "2026-01-03"}, {ValidFrom: "2026-01-03", ValidThrough: "2026-01-04"}}},
		"contained range":         {"Asia/Tokyo", ok, []ExceptionHour{{ValidFrom: "2026-01-01", ValidThrough: "2026-01-05", Opens: "10:00", Closes: "12:00"}, {ValidFrom: "2026-01-02", ValidThrough: "2026-01-02", Opens: "13:00", Closes: "14:00"}}},
		"closure beside an entry": {"Asia/Tokyo", ok, []ExceptionHour{{ValidFrom: "2026-01-01", ValidThrough: "2026-01-01"}, {ValidFrom: "2026-01-01", ValidThrough: "2026-01-01", Opens: "10:00", Closes: "12:00"}}},
	} {
		if _, err := parseSchedule(c.tz, c.hours, c.exc); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestCheckLocations: the settings a store may hold.
func TestCheckLocations(t *testing.T) {
	t.Parallel()
	if err := checkLocations(kyotoTeaLocations()); err != nil {
		t.Fatalf("the seed: %v", err)
	}
	for name, mutate := range map[string]func(l *StoreLocation){
		"id":       func(l *StoreLocation) { l.ID = "Gion Shop" },
		"name":     func(l *StoreLocation) { l.Name = " " },
		"geo":      func(l *StoreLocation) { l.Geo = nil },
		"latitude": func(l *StoreLocation) { l.Geo = &Geo{91, 0} },
		"amenity":  func(l *StoreLocation) { l.Amenities = []string{"wifi"} },
		"zone":     func(l *StoreLocation) { l.Timezone = "" },
		"hours":    func(l *StoreLocation) { l.Hours = []DailyHour{{Day: "funday", Opens: "10:00", Closes: "11:00"}} },
		"item":     func(l *StoreLocation) { l.Items = []string{""} },
	} {
		locs := kyotoTeaLocations()
		mutate(&locs[0])
		if err := checkLocations(locs); err == nil || !strings.Contains(err.Error(), "locations[0]") {
			t.Errorf("%s: %v", name, err)
		}
	}
	locs := kyotoTeaLocations()
	locs[1].ID = locs[0].ID
	if err := checkLocations(locs); err == nil {
		t.Error("duplicate ids accepted")
	}
}

// TestCurrentExceptions: an exception is shown until the day after it
// ends (local time), then left out.
func TestCurrentExceptions(t *testing.T) {
	t.Parallel()
	exc := kyotoTeaLocations()[0].ExceptionHours // 2026-12-31, 2027-01-01..03
	for at, want := range map[string]int{
		"2026-11-20T00:00:00Z": 2,
		"2027-01-01T14:59:00Z": 2, // 23:59 on the 1st in Tokyo: NYE ended yesterday
		"2027-01-01T15:00:00Z": 1, // the 2nd in Tokyo
		"2027-01-03T15:00:00Z": 1, // the 4th: the holidays ended yesterday
		"2027-01-04T15:00:00Z": 0, // the 5th
	} {
		now, _ := time.Parse(time.RFC3339, at)
		if got := currentExceptions(exc, "Asia/Tokyo", now); len(got) != want {
			t.Errorf("at %s: %d exceptions, want %d", at, len(got), want)
		}
	}
}

// TestPickupDefaultsAndWording: a store with shops but no pickup options
// offers one free in-store pickup; lists read as sentences.
func TestPickupDefaultsAndWording(t *testing.T) {
	t.Parallel()
	sh := &shopInfo{cfg: Settings{Locations: kyotoTeaLocations()}}
	lines := []ucp.LineItem{{ID: "li_1", Item: ucp.Item{ID: "sencha-100", Title: "Sencha 100g"}, Quantity: 1}}
	f, total, msgs := pickupMethod(sh, "kt-gion", "", lines)
	g := f.Methods[0].Groups[0]
	if len(msgs) != 0 || len(g.Options) != 1 || g.Options[0].ID != "in_store" || g.SelectedOptionID != "in_store" ||
		total == nil || total.Amount != 0 || total.DisplayText != "In-store pickup at Kyoto Tea House Gion" {
		t.Fatalf("default pickup: %+v %+v %+v", g, total, msgs)
	}
	for words, want := range map[string]string{"": "", "a": "a", "a|b": "a and b", "a|b|c": "a, b and c"} {
		var in []string
		if words != "" {
			in = strings.Split(words, "|")
		}
		if got := joinAnd(in); got != want {
			t.Errorf("joinAnd(%q) = %q, want %q", in, got, want)
		}
	}
}
