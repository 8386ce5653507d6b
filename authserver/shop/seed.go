package shop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// SeedShop is one store of the seed.
type SeedShop struct {
	Slug, Name, Currency string
	Config               Settings
	Products             []SeedProduct
}

// SeedProduct is a product with its variants; Stock < 0 is untracked.
type SeedProduct struct {
	ID, Title, Description string
	Categories             []string
	Tags                   []string
	Options                []ucp.ProductOption
	Variants               []SeedVariant
}

// SeedVariant is a purchasable unit.
type SeedVariant struct {
	ID, Title, SKU string
	Price          int64
	Stock          int64
	Options        []ucp.SelectedOption
}

func opt(name, label string) ucp.SelectedOption { return ucp.SelectedOption{Name: name, Label: label} }

// DemoShops is the deterministic seed used by `ucpbridge dev` and the
// tests: three stores in three currencies (USD and EUR in cents, JPY in
// yen), variants, tracked and untracked stock, and an out-of-stock item.
func DemoShops() []SeedShop {
	return []SeedShop{
		{Slug: "energy-sport", Name: "Energy Sport", Currency: "USD", Config: Settings{
			Rails: []string{HandlerCardID, HandlerCryptoID}, TaxBP: 825, TaxLabel: "Sales tax",
			RequireShipping: true, ShipTo: []string{"US", "CA"},
			Shipping: []ShippingOption{
				{ID: "standard", Title: "Standard (3-5 business days)", Amount: 599, FreeOver: 7500},
				{ID: "express", Title: "Express (1-2 business days)", Amount: 1999},
			},
			Discounts: map[string]DiscountRule{"RUN10": {Title: "10% off running gear", PercentBP: 1000}, "WELCOME5": {Title: "$5 welcome credit", Amount: 500}},
		}, Products: []SeedProduct{
			{ID: "trail-runner-x", Title: "Trail Runner X", Description: "Grippy, cushioned trail running shoe with a rock plate.",
				Categories: []string{"Running > Shoes"}, Tags: []string{"shoes", "trail", "running"},
				Options: []ucp.ProductOption{{Name: "Color", Values: []ucp.OptionValue{{Label: "Black"}, {Label: "Blue"}}}, {Name: "Size", Values: []ucp.OptionValue{{Label: "9"}, {Label: "10"}, {Label: "11"}}}},
				Variants: []SeedVariant{
					{ID: "trx-blk-9", Title: "Trail Runner X - Black / 9", SKU: "ES-TRX-BLK-9", Price: 12900, Stock: 25, Options: []ucp.SelectedOption{opt("Color", "Black"), opt("Size", "9")}},
					{ID: "trx-blk-10", Title: "Trail Runner X - Black / 10", SKU: "ES-TRX-BLK-10", Price: 12900, Stock: 0, Options: []ucp.SelectedOption{opt("Color", "Black"), opt("Size", "10")}},
					{ID: "trx-blu-10", Title: "Trail Runner X - Blue / 10", SKU: "ES-TRX-BLU-10", Price: 12900, Stock: 8, Options: []ucp.SelectedOption{opt("Color", "Blue"), opt("Size", "10")}},
					{ID: "trx-blu-11", Title: "Trail Runner X - Blue / 11", SKU: "ES-TRX-BLU-11", Price: 13400, Stock: 3, Options: []ucp.SelectedOption{opt("Color", "Blue"), opt("Size", "11")}},
				}},
			{ID: "road-racer-2", Title: "Road Racer 2", Description: "Light carbon-plated road racing shoe.",
				Categories: []string{"Running > Shoes"}, Tags: []string{"shoes", "road", "racing", "running"},
				Options: []ucp.ProductOption{{Name: "Size", Values: []ucp.OptionValue{{Label: "9"}, {Label: "10"}}}},
				Variants: []SeedVariant{
					{ID: "rr2-9", Title: "Road Racer 2 - 9", SKU: "ES-RR2-9", Price: 15900, Stock: 10, Options: []ucp.SelectedOption{opt("Size", "9")}},
					{ID: "rr2-10", Title: "Road Racer 2 - 10", SKU: "ES-RR2-10", Price: 15900, Stock: 12, Options: []ucp.SelectedOption{opt("Size", "10")}},
				}},
			{ID: "merino-socks", Title: "Merino Running Socks", Description: "Cushioned merino wool running socks, pair.",
				Categories: []string{"Running > Apparel"}, Tags: []string{"socks", "running"},
				Variants: []SeedVariant{{ID: "merino-socks-m", Title: "Merino Running Socks - M", SKU: "ES-SOCK-M", Price: 1800, Stock: -1}}},
			{ID: "hydration-vest", Title: "Hydration Vest 5L", Description: "Trail vest with two 500 ml soft flasks.",
				Categories: []string{"Running > Accessories"}, Tags: []string{"vest", "trail", "hydration"},
				Variants: []SeedVariant{{ID: "hydration-vest-5l", Title: "Hydration Vest 5L", SKU: "ES-VEST-5", Price: 8900, Stock: 5}}},
			{ID: "energy-gels", Title: "Energy Gels (12 pack)", Description: "Caffeine-free citrus energy gels.",
				Categories: []string{"Nutrition"}, Tags: []string{"gel", "nutrition"},
				Variants: []SeedVariant{{ID: "energy-gels-12", Title: "Energy Gels (12 pack)", SKU: "ES-GEL-12", Price: 3000, Stock: -1}}},
		}},
		// flower-shop ships to the US as well as the EU, so the Artos
		// SDK README's example (bouquet_roses to {country: "US",
		// postal_code: "94016"}) and any client defaulting to a US
		// address can complete; gardenias stay out of stock.
		{Slug: "flower-shop", Name: "Flower Shop", Currency: "EUR", Config: Settings{
			Rails: []string{HandlerCardID}, ShipTo: []string{"FR", "DE", "NL", "BE", "US"},
			Shipping: []ShippingOption{{ID: "courier", Title: "Courier delivery", Amount: 690, FreeOver: 6000,
				Description: "Same day in France, Germany, the Netherlands and Belgium; 3 to 5 business days to the United States"}},
			Discounts: map[string]DiscountRule{"SPRING15": {Title: "Spring 15%", PercentBP: 1500}},
		}, Products: []SeedProduct{
			{ID: "bouquet_roses", Title: "Bouquet of Red Roses", Description: "Twelve long-stem red roses.", Categories: []string{"Flowers > Bouquets"}, Tags: []string{"roses", "bouquet"},
				Variants: []SeedVariant{{ID: "bouquet_roses", Title: "Bouquet of Red Roses", SKU: "FS-ROSES-12", Price: 3500, Stock: 40}}},
			{ID: "gardenias", Title: "Potted Gardenias", Description: "Fragrant gardenia in a ceramic pot.", Categories: []string{"Flowers > Plants"}, Tags: []string{"gardenia", "plant"},
				Variants: []SeedVariant{{ID: "gardenias", Title: "Potted Gardenias", SKU: "FS-GARD", Price: 2800, Stock: 0}}},
			{ID: "tulip_bunch", Title: "Tulip Bunch", Description: "Ten mixed tulips.", Categories: []string{"Flowers > Bouquets"}, Tags: []string{"tulips", "bouquet"},
				Variants: []SeedVariant{{ID: "tulip_bunch", Title: "Tulip Bunch", SKU: "FS-TULIP-10", Price: 1900, Stock: 60}}},
			{ID: "orchid_pot", Title: "White Orchid", Description: "Phalaenopsis orchid, two stems.", Categories: []string{"Flowers > Plants"}, Tags: []string{"orchid", "plant"},
				Variants: []SeedVariant{{ID: "orchid_pot", Title: "White Orchid", SKU: "FS-ORCH", Price: 4500, Stock: 7}}},
			{ID: "sunflowers", Title: "Sunflowers", Description: "Five sunflowers.", Categories: []string{"Flowers > Bouquets"}, Tags: []string{"sunflowers", "bouquet"},
				Variants: []SeedVariant{{ID: "sunflowers", Title: "Sunflowers", SKU: "FS-SUN-5", Price: 2200, Stock: -1}}},
		}},
		{Slug: "kyoto-tea", Name: "Kyoto Tea House", Currency: "JPY", Config: Settings{
			Rails: []string{HandlerCardID}, ShipTo: []string{"JP"}, RequireSignedCompletion: true,
			Shipping: []ShippingOption{{ID: "yamato", Title: "Yamato Transport", Amount: 800, FreeOver: 5000}},
			Pickup: []ShippingOption{
				{ID: "in_store", Title: "In-store pickup", Description: "Ready within two hours, during opening hours"},
				{ID: "express", Title: "Express in-store pickup", Description: "Ready within 30 minutes, during opening hours", Amount: 300},
			},
			Locations: kyotoTeaLocations(),
		}, Products: []SeedProduct{
			{ID: "matcha-uji", Title: "Uji Matcha 40g", Description: "Ceremonial grade matcha from Uji.", Categories: []string{"Tea"}, Tags: []string{"matcha", "tea"},
				Variants: []SeedVariant{{ID: "matcha-uji-40", Title: "Uji Matcha 40g", SKU: "KT-MATCHA-40", Price: 3240, Stock: 30}}},
			{ID: "sencha", Title: "Sencha 100g", Description: "First-flush sencha.", Categories: []string{"Tea"}, Tags: []string{"sencha", "tea"},
				Variants: []SeedVariant{{ID: "sencha-100", Title: "Sencha 100g", SKU: "KT-SENCHA-100", Price: 1620, Stock: -1}}},
			{ID: "chawan", Title: "Raku Tea Bowl", Description: "Hand-made raku chawan.", Categories: []string{"Teaware"}, Tags: []string{"bowl", "teaware"},
				Variants: []SeedVariant{{ID: "chawan-raku", Title: "Raku Tea Bowl", SKU: "KT-CHAWAN", Price: 5400, Stock: 4}}},
		}},
	}
}

// kyotoTeaLocations are kyoto-tea's two shops (Asia/Tokyo, no daylight
// saving): Gion carries everything and closes on Wednesdays; Arashiyama
// opens every day but has no tea bowls. Both close for the New Year.
func kyotoTeaLocations() []StoreLocation {
	week := func(opens, closes string, days ...string) []DailyHour {
		var out []DailyHour
		for _, d := range days {
			out = append(out, DailyHour{Day: d, Opens: opens, Closes: closes})
		}
		return out
	}
	newYear := ExceptionHour{Title: "New Year holidays", ValidFrom: "2027-01-01", ValidThrough: "2027-01-03"}
	return []StoreLocation{
		{Location: Location{ID: "kt-gion", Name: "Kyoto Tea House Gion",
			Address: &ucp.PostalAddress{StreetAddress: "570-120 Gionmachi Minamigawa, Higashiyama-ku", AddressLocality: "Kyoto",
				AddressRegion: "Kyoto", PostalCode: "605-0074", AddressCountry: "JP"},
			Geo:       &Geo{Latitude: 35.0037, Longitude: 135.7750},
			Amenities: []string{"dev.ucp.amenity.shopping.in_store_pickup", "dev.ucp.amenity.wi_fi"},
			Timezone:  "Asia/Tokyo",
			Hours: append(week("10:00", "18:00", "monday", "tuesday", "thursday", "friday"),
				week("10:00", "19:00", "saturday", "sunday")...),
			ExceptionHours: []ExceptionHour{
				{Title: "New Year's Eve", ValidFrom: "2026-12-31", ValidThrough: "2026-12-31", Opens: "10:00", Closes: "15:00"}, newYear},
		}, Items: []string{"matcha-uji-40", "sencha-100", "chawan-raku"}},
		{Location: Location{ID: "kt-arashiyama", Name: "Kyoto Tea House Arashiyama",
			Address: &ucp.PostalAddress{StreetAddress: "68 Sagatenryuji Susukinobabacho, Ukyo-ku", AddressLocality: "Kyoto",
				AddressRegion: "Kyoto", PostalCode: "616-8385", AddressCountry: "JP"},
			Geo:       &Geo{Latitude: 35.0158, Longitude: 135.6737},
			Amenities: []string{"dev.ucp.amenity.shopping.in_store_pickup", "dev.ucp.amenity.parking"},
			Timezone:  "Asia/Tokyo",
			Hours:     week("09:00", "17:00", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
			ExceptionHours: []ExceptionHour{
				{Title: "New Year holidays", ValidFrom: "2026-12-31", ValidThrough: "2027-01-03"}},
		}, Items: []string{"matcha-uji-40", "sencha-100"}},
	}
}

// Seed writes shops into st. Stores that already exist are left alone,
// so a restarted dev server keeps its stock and orders; one whose
// settings predate locations gets the seed's (and its pickup options),
// nothing else.
func Seed(ctx context.Context, st store.Commerce, shops []SeedShop, now time.Time) error {
	for _, sh := range shops {
		if cur, err := st.Shop(ctx, sh.Slug); err == nil {
			if err := seedLocations(ctx, st, sh, cur); err != nil {
				return err
			}
			if err := seedShipTo(ctx, st, sh, cur); err != nil {
				return err
			}
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := PutSeedShop(ctx, st, sh, now); err != nil {
			return err
		}
	}
	return nil
}

// PutSeedShop writes one shop and its products, replacing what is there.
func PutSeedShop(ctx context.Context, st store.Commerce, sh SeedShop, now time.Time) error {
	if !slugRE.MatchString(sh.Slug) {
		return fmt.Errorf("shop: bad slug %q", sh.Slug)
	}
	cfg, err := json.Marshal(sh.Config)
	if err != nil {
		return err
	}
	if err := checkShopConfig(cfg); err != nil {
		return err
	}
	if err := st.PutShop(ctx, &store.Shop{Slug: sh.Slug, Name: sh.Name, Currency: sh.Currency, Config: cfg, CreatedAt: now}); err != nil {
		return err
	}
	for _, p := range sh.Products {
		doc := ucp.Product{ID: p.ID, Title: p.Title, Description: ucp.Description{Plain: p.Description}, Tags: p.Tags, Options: p.Options}
		for _, c := range p.Categories {
			doc.Categories = append(doc.Categories, ucp.Category{Value: c, Taxonomy: "merchant"})
		}
		text := []string{p.Title, p.Description, strings.Join(p.Tags, " "), strings.Join(p.Categories, " ")}
		var rows []*store.Variant
		lo, hi := int64(-1), int64(0)
		for _, v := range p.Variants {
			if v.Price < 0 || v.Price > maxPrice {
				return fmt.Errorf("seed %s/%s: price %d out of range", sh.Slug, v.ID, v.Price)
			}
			doc.Variants = append(doc.Variants, ucp.Variant{ID: v.ID, SKU: v.SKU, Title: v.Title,
				Description: ucp.Description{Plain: p.Description}, Price: ucp.Price{Amount: v.Price, Currency: sh.Currency}, Options: v.Options})
			rows = append(rows, &store.Variant{ShopSlug: sh.Slug, ID: v.ID, ProductID: p.ID, Title: v.Title, Price: v.Price, Stock: v.Stock})
			text = append(text, v.Title, v.SKU)
			if lo < 0 || v.Price < lo {
				lo = v.Price
			}
			hi = max(hi, v.Price)
		}
		doc.PriceRange = ucp.PriceRange{Min: ucp.Price{Amount: lo, Currency: sh.Currency}, Max: ucp.Price{Amount: hi, Currency: sh.Currency}}
		b, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		row := &store.Product{ShopSlug: sh.Slug, ID: p.ID, Title: p.Title, Text: strings.ToLower(strings.Join(text, " ")),
			MinPrice: lo, MaxPrice: hi, Currency: sh.Currency, Categories: p.Categories, Doc: b, UpdatedAt: now}
		if err := st.PutProduct(ctx, row, rows); err != nil {
			return fmt.Errorf("seed %s/%s: %w", sh.Slug, p.ID, err)
		}
	}
	return nil
}

// seedLocations adds the seed's locations and pickup options to an
// existing store whose settings have no locations, under the store row's
// lock (UpdateShopConfig): the rest of the settings stays as it is.
func seedLocations(ctx context.Context, st store.Commerce, sh SeedShop, cur *store.Shop) error {
	var has struct {
		Locations json.RawMessage `json:"locations"`
	}
	if len(sh.Config.Locations) == 0 || json.Unmarshal(cur.Config, &has) != nil || has.Locations != nil {
		return nil // nothing to add, or settings the store itself will refuse to read
	}
	return st.UpdateShopConfig(ctx, sh.Slug, func(raw json.RawMessage) (json.RawMessage, error) {
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, err
		}
		if _, ok := doc["locations"]; ok {
			return raw, nil
		}
		add := func(k string, v any) error {
			b, err := json.Marshal(v)
			doc[k] = b
			return err
		}
		if err := add("locations", sh.Config.Locations); err != nil {
			return nil, err
		}
		if _, ok := doc["pickup"]; !ok && len(sh.Config.Pickup) > 0 {
			if err := add("pickup", sh.Config.Pickup); err != nil {
				return nil, err
			}
		}
		out, err := json.Marshal(doc)
		if err != nil {
			return nil, err
		}
		return out, checkShopConfig(out)
	})
}

// seedShipTo adds to an existing demo store the destinations a newer seed
// ships to (flower-shop gained the US so the Artos SDK's README example
// completes); none are removed, and nothing else is touched.
func seedShipTo(ctx context.Context, st store.Commerce, sh SeedShop, cur *store.Shop) error {
	var has struct {
		ShipTo []string `json:"ship_to"`
	}
	if json.Unmarshal(cur.Config, &has) != nil || len(has.ShipTo) == 0 {
		return nil // settings the store will refuse to read, or no restriction to widen
	}
	missing := slices.DeleteFunc(slices.Clone(sh.Config.ShipTo), func(c string) bool { return slices.Contains(has.ShipTo, c) })
	if len(missing) == 0 {
		return nil
	}
	return st.UpdateShopConfig(ctx, sh.Slug, func(raw json.RawMessage) (json.RawMessage, error) {
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, err
		}
		var shipTo []string
		if err := json.Unmarshal(doc["ship_to"], &shipTo); err != nil {
			return nil, err
		}
		for _, c := range sh.Config.ShipTo {
			if !slices.Contains(shipTo, c) {
				shipTo = append(shipTo, c)
			}
		}
		b, err := json.Marshal(shipTo)
		if err != nil {
			return nil, err
		}
		doc["ship_to"] = b
		out, err := json.Marshal(doc)
		if err != nil {
			return nil, err
		}
		return out, checkShopConfig(out)
	})
}
