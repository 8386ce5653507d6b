package shop

// A store's physical locations: search and lookup (search_locations,
// lookup_locations; REST POST /s/{slug}/locations/search|lookup) and the
// destinations of pickup (fulfillment.go).
//
// UCP 2026-04-08 has pickup (fulfillment methods of type "pickup" whose
// destinations are retail locations) but no way to find locations. The
// location capability (dev.ucp.common.location.search and .lookup) exists
// only in the UCP repository's unreleased draft (branch feat/location,
// docs/specification/common/location/*.md and
// source/schemas/common/location_*.json): the stores serve its request
// and response shapes, as the Artos bridge's search_locations and
// lookup_locations do, but do not advertise the capabilities: a dev.ucp.*
// capability names its spec and schema on ucp.dev (overview.md "Spec URL
// Binding"), and 2026-04-08 publishes none for locations.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// Location is a physical shop as the location operations return it
// (the draft's location.json).
type Location struct {
	ID             string             `json:"id"`
	Name           string             `json:"name"`
	Address        *ucp.PostalAddress `json:"address,omitempty"`
	Geo            *Geo               `json:"geo,omitempty"`
	Amenities      []string           `json:"amenities,omitempty"`
	Hours          []DailyHour        `json:"hours,omitempty"`
	ExceptionHours []ExceptionHour    `json:"exception_hours,omitempty"`
	Timezone       string             `json:"timezone,omitempty"`
}

// StoreLocation is a location in the store's settings: what the
// operations show plus Items, the variant ids the shop carries (its
// inventory, never shown as such: the inventory filter and pickup read
// it).
type StoreLocation struct {
	Location
	Items []string `json:"items,omitempty"`
}

// Bounds on the locations a store's settings hold and on one request.
const (
	maxLocations          = 100
	maxLocationItems      = 1000
	maxLocationAmenities  = 20
	maxLocationFilterList = 20
	// maxLocationLookupIDs is the lookup batch maximum (the draft asks
	// for at least 10); beyond it the first ones are processed and an
	// info message says how many were not.
	maxLocationLookupIDs = 20
)

var (
	locationIDRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$`)
	// reverseDomainRE is reverse_domain_name.json's pattern (amenities).
	reverseDomainRE = regexp.MustCompile(`^[a-z](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9_-]*[a-z0-9_])?)+$`)
)

// checkLocations validates the locations of settings about to be written.
func checkLocations(locs []StoreLocation) error {
	if len(locs) > maxLocations {
		return fmt.Errorf("store configuration: at most %d locations", maxLocations)
	}
	seen := map[string]bool{}
	for i, l := range locs {
		fail := func(format string, a ...any) error {
			return fmt.Errorf("store configuration: locations[%d] (%s): %s", i, l.ID, fmt.Sprintf(format, a...))
		}
		switch {
		case !locationIDRE.MatchString(l.ID):
			return fail("id must be 1 to 64 of a-z, 0-9, - and _")
		case seen[l.ID]:
			return fail("duplicate id")
		case strings.TrimSpace(l.Name) == "" || len(l.Name) > 256:
			return fail("name is required (at most 256 bytes)")
		case l.Geo == nil || math.Abs(l.Geo.Latitude) > 90 || math.Abs(l.Geo.Longitude) > 180:
			return fail("geo must be a WGS 84 latitude and longitude")
		case len(l.Amenities) > maxLocationAmenities || len(l.Items) > maxLocationItems:
			return fail("at most %d amenities and %d items", maxLocationAmenities, maxLocationItems)
		}
		seen[l.ID] = true
		for _, a := range l.Amenities {
			if !reverseDomainRE.MatchString(a) {
				return fail("amenity %q is not a reverse-domain name", a)
			}
		}
		for _, it := range l.Items {
			if it == "" || len(it) > maxIDLen {
				return fail("items are variant ids")
			}
		}
		if (len(l.Hours) > 0 || len(l.ExceptionHours) > 0) && l.Timezone == "" {
			return fail("timezone is required with hours")
		}
		if _, err := parseSchedule(l.Timezone, l.Hours, l.ExceptionHours); err != nil {
			return fail("%v", err)
		}
	}
	return nil
}

// carries reports whether the location stocks variant id.
func (l *StoreLocation) carries(id string) bool { return slices.Contains(l.Items, id) }

// view is the location as the operations show it at now: exceptions that
// can no longer apply are left out.
func (l *StoreLocation) view(now time.Time) Location {
	v := l.Location
	v.ExceptionHours = currentExceptions(v.ExceptionHours, v.Timezone, now)
	return v
}

// summary is the location as a pickup destination (the draft's
// location_destination.json over 2026-04-08's retail_location.json).
func (l *StoreLocation) summary() ucp.Destination {
	d := ucp.Destination{PostalAddress: ucp.PostalAddress{ID: l.ID}, Type: "business_location", Name: l.Name}
	if l.Address != nil {
		a := *l.Address
		a.ID = ""
		d.Address = &a
	}
	return d
}

// text is what a query's words are looked up in.
func (l *StoreLocation) text() string {
	parts := []string{l.ID, l.Name}
	if a := l.Address; a != nil {
		parts = append(parts, a.StreetAddress, a.ExtendedAddress, a.AddressLocality, a.AddressRegion, a.PostalCode, a.AddressCountry)
	}
	return strings.ToLower(strings.Join(parts, " "))
}

// locationRequest is a search or lookup body (the draft's
// location_search.json#/$defs/search_request and
// location_lookup.json#/$defs/lookup_request). context and signals are
// hints the stores do not use: they never stand in for distance.
type locationRequest struct {
	Query      string            `json:"query"`
	IDs        []string          `json:"ids"`
	Distance   *locationDistance `json:"distance"`
	Serves     json.RawMessage   `json:"serves"`
	Filters    json.RawMessage   `json:"filters"`
	Pagination *struct {
		Cursor string `json:"cursor"`
		Limit  *int   `json:"limit"`
	} `json:"pagination"`
	Context json.RawMessage `json:"context"`
	Signals json.RawMessage `json:"signals"`
}

type locationDistance struct {
	Center *struct {
		Latitude  *float64 `json:"latitude"`
		Longitude *float64 `json:"longitude"`
	} `json:"center"`
	Max *float64 `json:"max"`
}

type locationFilters struct {
	Hours *struct {
		OpenAt string `json:"open_at"`
	} `json:"hours"`
	Amenities []string `json:"amenities"`
	Inventory []struct {
		ID                 string `json:"id"`
		AvailabilityStatus string `json:"availability_status"`
	} `json:"inventory"`
	// Items is the Artos SDK's inventory filter: ids that must all be
	// available, as inventory entries without a status.
	Items []string `json:"items"`
}

// locationQuery is a request's criteria, checked.
type locationQuery struct {
	center    *Geo
	max       float64
	openAt    *time.Time
	amenities []string
	// inventory: item id → the statuses asked for it.
	inventory map[string][]string
	order     []string // inventory ids in request order
	terms     []string
}

// parseLocationQuery checks the criteria search and lookup share. The
// draft's rule is that nothing is silently widened: a criterion the store
// cannot evaluate is refused, never ignored.
func parseLocationQuery(req *locationRequest) (*locationQuery, *Reply) {
	q := &locationQuery{inventory: map[string][]string{}}
	if len(req.Query) > 500 {
		return nil, invalidRequest("query is longer than 500 characters")
	}
	if q.terms = strings.Fields(strings.ToLower(req.Query)); len(q.terms) > 20 {
		return nil, invalidRequest("query has more than 20 words")
	}
	if d := req.Distance; d != nil {
		if d.Center == nil || d.Center.Latitude == nil || d.Center.Longitude == nil {
			return nil, invalidRequest("distance.center {latitude, longitude} is required with distance: the store never guesses a centre")
		}
		if d.Max == nil || *d.Max < 0 {
			return nil, invalidRequest("distance.max, the radius in metres (0 or more), is required with distance")
		}
		lat, lon := *d.Center.Latitude, *d.Center.Longitude
		if math.Abs(lat) > 90 || math.Abs(lon) > 180 {
			return nil, invalidRequest("distance.center: latitude is -90 to 90 and longitude -180 to 180 (WGS 84 degrees)")
		}
		q.center, q.max = &Geo{Latitude: lat, Longitude: lon}, *d.Max
	}
	if len(req.Serves) > 0 && string(req.Serves) != "null" {
		return nil, invalidRequest("serves is not supported: these locations offer in-store pickup and serve no area; " +
			"use distance {center, max} to find locations near a point")
	}
	if len(req.Filters) == 0 || string(req.Filters) == "null" {
		return q, nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(req.Filters, &members); err != nil {
		return nil, invalidRequest("filters must be an object")
	}
	for k := range members {
		if !slices.Contains([]string{"hours", "amenities", "inventory", "items"}, k) {
			return nil, invalidRequest("filters.%.64s is not supported (supported: hours, amenities, inventory, items)", k)
		}
	}
	var f locationFilters
	if rep := decodeBody(req.Filters, &f); rep != nil {
		return nil, rep
	}
	if f.Hours != nil {
		// RFC 3339 allows a lowercase t and z; Go's parser wants them
		// upper case (nothing else in the form is a letter).
		t, err := time.Parse(time.RFC3339Nano, strings.ToUpper(f.Hours.OpenAt))
		if err != nil {
			return nil, invalidRequest("filters.hours.open_at must be an RFC 3339 instant with Z or an offset, e.g. 2026-05-18T17:00:00Z")
		}
		q.openAt = &t
	}
	if len(f.Amenities) > maxLocationFilterList || len(f.Inventory)+len(f.Items) > maxLocationFilterList {
		return nil, invalidRequest("at most %d amenities and %d inventory items", maxLocationFilterList, maxLocationFilterList)
	}
	q.amenities = f.Amenities
	add := func(id, status string) {
		if _, ok := q.inventory[id]; !ok {
			q.order = append(q.order, id)
		}
		q.inventory[id] = append(q.inventory[id], status)
	}
	for i, it := range f.Inventory {
		if it.ID == "" {
			return nil, invalidRequest("filters.inventory[%d].id is required", i)
		}
		add(it.ID, it.AvailabilityStatus)
	}
	for i, id := range f.Items {
		if id == "" {
			return nil, invalidRequest("filters.items[%d] is empty", i)
		}
		add(id, "")
	}
	return q, nil
}

// matcher evaluates a query against a store's locations.
type matcher struct {
	q *locationQuery
	// available: inventory id → location id → available there.
	available map[string]map[string]bool
	messages  []ucp.Message
	// impossible: some inventory predicate matches nowhere by its terms
	// (an unknown item, contradictory statuses).
	impossible bool
}

// newMatcher resolves the inventory predicates: an id is a variant or a
// product (any of its variants will do), available at a location that
// carries it while the store has stock (one count per variant: the
// locations say which shops carry an item, not how many each holds).
// in_stock is the only status the stores have; backorder, preorder and
// others match nowhere.
func (s *Service) newMatcher(ctx context.Context, sh *shopInfo, q *locationQuery) (*matcher, error) {
	m := &matcher{q: q, available: map[string]map[string]bool{}}
	if len(q.order) == 0 {
		return m, nil
	}
	vs, err := s.cfg.Store.Variants(ctx, sh.Slug, q.order)
	if err != nil {
		return nil, err
	}
	for _, id := range q.order {
		var statuses []string // without a status: in stock
		for _, st := range q.inventory[id] {
			statuses = append(statuses, cmpOr(st, "in_stock"))
		}
		if statuses = slices.Compact(slices.Sorted(slices.Values(statuses))); len(statuses) > 1 {
			m.impossible = true
			m.messages = append(m.messages, ucp.Message{Type: "info", Code: "contradictory_filters", Path: "$.filters.inventory",
				Content: fmt.Sprintf("item %.64q is asked for with several availability statuses; no location has it in all of them", id)})
			continue
		}
		if statuses[0] != "in_stock" {
			m.impossible = true // a status the store never has: an empty result
			continue
		}
		variants := []*store.Variant{}
		if v, ok := vs[id]; ok {
			variants = append(variants, v)
		} else if variants, err = s.cfg.Store.ProductVariants(ctx, sh.Slug, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if len(variants) == 0 {
			m.impossible = true
			m.messages = append(m.messages, ucp.Message{Type: "info", Code: "item_not_found", Path: "$.filters.inventory",
				Content: fmt.Sprintf("item %.64q is not sold by this store", id)})
			continue
		}
		at := map[string]bool{}
		for i := range sh.cfg.Locations {
			l := &sh.cfg.Locations[i]
			at[l.ID] = slices.ContainsFunc(variants, func(v *store.Variant) bool { return v.Stock != 0 && l.carries(v.ID) })
		}
		m.available[id] = at
	}
	return m, nil
}

// errDistanceUnknown: a location's distance from the centre is one
// Vincenty's formula cannot give (nearly antipodal).
var errDistanceUnknown = errors.New("distance unknown")

// match reports whether location l meets every criterion (they combine
// with AND; the query's words, when given, must all occur in the name,
// id or address) and its distance from the centre (0 without one).
func (m *matcher) match(l *StoreLocation) (bool, float64, error) {
	q := m.q
	if m.impossible {
		return false, 0, nil
	}
	text := l.text()
	for _, w := range q.terms {
		if !strings.Contains(text, w) {
			return false, 0, nil
		}
	}
	for _, a := range q.amenities {
		if !slices.Contains(l.Amenities, a) {
			return false, 0, nil
		}
	}
	for _, id := range q.order {
		if !m.available[id][l.ID] {
			return false, 0, nil
		}
	}
	if q.openAt != nil {
		sc, err := parseSchedule(l.Timezone, l.Hours, l.ExceptionHours)
		if err != nil || !sc.openAt(*q.openAt) {
			return false, 0, nil // a schedule the store cannot read is never open
		}
	}
	var d float64
	if q.center != nil {
		if l.Geo == nil {
			return false, 0, nil
		}
		var ok bool
		d, ok = geodesicMetres(*q.center, *l.Geo)
		if !ok {
			// Vincenty did not converge (nearly antipodal points). The
			// great circle on the mean sphere is within 1% of the
			// geodesic everywhere, so it settles every radius outside
			// that band; only a radius inside it cannot be judged.
			gc := greatCircleMetres(*q.center, *l.Geo)
			switch {
			case q.max >= halfMeridian:
				d = halfMeridian // within any such radius, wherever it is
			case gc*0.99 > q.max:
				return false, 0, nil
			case gc*1.01 <= q.max:
				d = gc
			default:
				return false, 0, errDistanceUnknown
			}
		}
		if d > q.max { // the unrounded length; equality matches
			return false, 0, nil
		}
	}
	return true, d, nil
}

// greatCircleMetres is the haversine distance on the sphere of the WGS 84
// mean radius: a bound on the geodesic where Vincenty fails, not the
// distance the draft asks for.
func greatCircleMetres(a, b Geo) float64 {
	const meanRadius = 6_371_008.8
	rad := math.Pi / 180
	dLat, dLon := (b.Latitude-a.Latitude)*rad, (b.Longitude-a.Longitude)*rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(a.Latitude*rad)*math.Cos(b.Latitude*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * meanRadius * math.Asin(math.Min(1, math.Sqrt(h)))
}

func distanceUnknownReply() *Reply {
	return invalidRequest("distance.center is nearly antipodal to one of the store's locations, where the geodesic " +
		"(Vincenty's formula) cannot be computed; use a radius of at least 20003932 m (it then covers the whole Earth) or another centre")
}

// decodeLocationRequest reads a search or lookup body; search takes an
// empty one (a bounded browse of the store's locations).
func decodeLocationRequest(oc *opCtx) (*locationRequest, *Reply) {
	var req locationRequest
	if len(oc.Body) == 0 {
		return &req, nil
	}
	if rep := decodeBody(oc.Body, &req); rep != nil {
		return nil, rep
	}
	return &req, nil
}

func (s *Service) searchLocations(ctx context.Context, oc *opCtx) *Reply {
	req, rep := decodeLocationRequest(oc)
	if rep != nil {
		return rep
	}
	q, rep := parseLocationQuery(req)
	if rep != nil {
		return rep
	}
	limit, offset := defaultPageSize, 0
	if p := req.Pagination; p != nil {
		if p.Limit != nil {
			if *p.Limit < 1 {
				return invalidRequest("pagination.limit must be 1 or more")
			}
			limit = min(*p.Limit, maxPageSize)
		}
		if p.Cursor != "" {
			var ok bool
			if offset, ok = decodeLocationCursor(p.Cursor); !ok {
				return invalidRequest("pagination.cursor is not a cursor this store issued")
			}
		}
	}
	m, err := s.newMatcher(ctx, oc.shop, q)
	if err != nil {
		return s.storeFailure(ctx, err)
	}
	type hit struct {
		l *StoreLocation
		d float64
	}
	var hits []hit
	for i := range oc.shop.cfg.Locations {
		l := &oc.shop.cfg.Locations[i]
		ok, d, err := m.match(l)
		if err != nil {
			return distanceUnknownReply()
		}
		if ok {
			hits = append(hits, hit{l, d})
		}
	}
	if q.center != nil {
		// Nearest first: an ordering, not a criterion.
		slices.SortStableFunc(hits, func(a, b hit) int { return cmpFloat(a.d, b.d) })
	}
	total := len(hits)
	resp := locationSearchResponse{UCP: oc.neg.envelope(), Locations: []Location{}, Messages: m.messages}
	now := s.now()
	for _, h := range hits[min(offset, total):min(offset+limit, total)] {
		resp.Locations = append(resp.Locations, h.l.view(now))
	}
	resp.Pagination = &ucp.Pagination{HasNextPage: offset+limit < total, TotalCount: &total}
	if resp.Pagination.HasNextPage {
		resp.Pagination.Cursor = encodeLocationCursor(offset + limit)
	}
	return payload(http.StatusOK, &resp)
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type locationSearchResponse struct {
	UCP        *ucp.Envelope   `json:"ucp"`
	Locations  []Location      `json:"locations"`
	Pagination *ucp.Pagination `json:"pagination,omitempty"`
	Messages   []ucp.Message   `json:"messages,omitempty"`
}

// lookupLocation is a lookup result: the location and the requested ids
// that resolved to it (the draft's lookup_location).
type lookupLocation struct {
	Location
	Inputs []lookupInput `json:"inputs"`
}

type lookupInput struct {
	ID string `json:"id"`
}

type locationLookupResponse struct {
	UCP       *ucp.Envelope    `json:"ucp"`
	Locations []lookupLocation `json:"locations"`
	Messages  []ucp.Message    `json:"messages,omitempty"`
}

// lookupLocations resolves ids to locations (canonical ids only), each
// once with the ids that named it, then keeps those that meet the
// request's distance and filters. Ids that resolve to nothing get an info
// not_found message; beyond maxLocationLookupIDs distinct ids the rest
// are not processed (batch_limit_applied).
func (s *Service) lookupLocations(ctx context.Context, oc *opCtx) *Reply {
	req, rep := decodeLocationRequest(oc)
	if rep != nil {
		return rep
	}
	if len(req.IDs) == 0 {
		return invalidRequest("ids is required: one or more location ids (lookup_locations {ids: [\"…\"]})")
	}
	q, rep := parseLocationQuery(req)
	if rep != nil {
		return rep
	}
	if len(q.terms) > 0 || req.Pagination != nil {
		return invalidRequest("lookup takes ids, not query or pagination; search_locations does")
	}
	var ids []string // distinct, in request order
	seen := make(map[string]bool, len(req.IDs))
	for _, id := range req.IDs {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	resp := locationLookupResponse{UCP: oc.neg.envelope(), Locations: []lookupLocation{}}
	if n := len(ids); n > maxLocationLookupIDs {
		ids = ids[:maxLocationLookupIDs]
		resp.Messages = append(resp.Messages, ucp.Message{Type: "info", Code: "batch_limit_applied",
			Content: fmt.Sprintf("Processed the first %d of %d distinct identifiers; %d identifiers were not processed.",
				maxLocationLookupIDs, n, n-maxLocationLookupIDs)})
	}
	m, err := s.newMatcher(ctx, oc.shop, q)
	if err != nil {
		return s.storeFailure(ctx, err)
	}
	resp.Messages = append(resp.Messages, m.messages...)
	now := s.now()
	for _, id := range ids {
		i := slices.IndexFunc(oc.shop.cfg.Locations, func(l StoreLocation) bool { return l.ID == id })
		if i < 0 {
			resp.Messages = append(resp.Messages, ucp.Message{Type: "info", Code: "not_found", Path: "$.ids",
				Content: fmt.Sprintf("No location has the id %.64q.", id)})
			continue
		}
		l := &oc.shop.cfg.Locations[i]
		ok, _, err := m.match(l)
		if err != nil {
			return distanceUnknownReply()
		}
		if ok {
			resp.Locations = append(resp.Locations, lookupLocation{Location: l.view(now), Inputs: []lookupInput{{ID: id}}})
		}
	}
	return payload(http.StatusOK, &resp)
}

// Search cursors are offsets into the ordered matches, opaque to the
// caller.
func encodeLocationCursor(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("loc:" + strconv.Itoa(offset)))
}

func decodeLocationCursor(c string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(b), "loc:") {
		return 0, false
	}
	n, err := strconv.Atoi(string(b[4:]))
	if err != nil || n < 0 || n > maxLocations {
		return 0, false
	}
	return n, true
}
