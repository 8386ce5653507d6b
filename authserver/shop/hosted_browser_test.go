package shop_test

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/shop"
)

// browser is a buyer's browser on a hosted continue page: it keeps
// cookies, follows redirects, and submits the page's forms with their
// hidden fields, as a browser does.
type browser struct {
	t      *testing.T
	client *http.Client
	url    string // the continue URL
	status int    // of the last response
	page   string // the last page
}

func (e *env) browser(continueURL string) *browser {
	e.t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	b := &browser{t: e.t, client: &http.Client{Transport: e.srv.Client().Transport, Jar: jar}, url: continueURL}
	b.open()
	return b
}

// open loads the page.
func (b *browser) open() {
	b.t.Helper()
	res, err := b.client.Get(b.url)
	b.read(res, err)
}

func (b *browser) read(res *http.Response, err error) {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	p, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	b.status, b.page = res.StatusCode, string(p)
}

var (
	formRE   = regexp.MustCompile(`(?s)<form method="post" data-step="([a-z0-9]+)">(.*?)</form>`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([a-z]+)" value="([^"]*)">`)
)

// hasForm reports whether the page shows the form of step.
func (b *browser) hasForm(step string) bool {
	for _, m := range formRE.FindAllStringSubmatch(b.page, -1) {
		if m[1] == step {
			return true
		}
	}
	return false
}

// form returns the hidden fields of the page's form for step.
func (b *browser) form(step string) url.Values {
	b.t.Helper()
	for _, m := range formRE.FindAllStringSubmatch(b.page, -1) {
		if m[1] != step {
			continue
		}
		v := url.Values{}
		for _, h := range hiddenRE.FindAllStringSubmatch(m[2], -1) {
			v.Set(h[1], html.UnescapeString(h[2]))
		}
		return v
	}
	b.t.Fatalf("no %q form on the page (HTTP %d):\n%s", step, b.status, b.page)
	return nil
}

// post submits form to the page as the browser.
func (b *browser) post(form url.Values) {
	b.t.Helper()
	res, err := b.client.PostForm(b.url, form)
	b.read(res, err)
}

// submit fills in the page's form for step with fields and submits it.
func (b *browser) submit(step string, fields ...string) {
	b.t.Helper()
	f := b.form(step)
	for i := 0; i+1 < len(fields); i += 2 {
		f.Set(fields[i], fields[i+1])
	}
	b.post(f)
}

// futureExpiry is a card expiry two years ahead, as MM/YY.
func futureExpiry() string { return time.Now().AddDate(2, 0, 0).Format("01/06") }

// enterCard submits the card step.
func (b *browser) enterCard(number string) {
	b.t.Helper()
	b.submit("card", "number", number, "expiry", futureExpiry(), "cvc", "123", "name", "Ada Lovelace")
}

// want fails the test unless the last response had status and the page
// holds every one of texts.
func (b *browser) want(status int, texts ...string) {
	b.t.Helper()
	if b.status != status {
		b.t.Fatalf("HTTP %d, want %d:\n%s", b.status, status, b.page)
	}
	for _, s := range texts {
		if !strings.Contains(b.page, s) {
			b.t.Fatalf("the page does not say %q:\n%s", s, b.page)
		}
	}
}

// payWith pays on the page with card number: the card step, 3-D Secure
// when the card asks for it, then the confirmation.
func (b *browser) payWith(number string) {
	b.t.Helper()
	b.enterCard(number)
	if b.hasForm("3ds") {
		b.submit("3ds", "decision", "complete")
	}
	b.submit("pay")
}

// payOnHostedPage pays on the hosted continue page as the buyer with the
// sandbox card that succeeds, and checks the page then shows the order.
func (e *env) payOnHostedPage(continueURL string) {
	e.t.Helper()
	b := e.browser(continueURL)
	b.payWith(shop.SandboxCardSuccess)
	b.want(http.StatusOK, "Order placed")
}
