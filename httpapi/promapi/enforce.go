package promapi

import (
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/hourglass-io/hourglass/tsstore"
)

// EnforceMatchers returns ms restricted to the merchant, as prom-label-proxy
// does: a matcher on MerchantLabel that the merchant satisfies
// ({merchant!="x"}, {merchant=~"other|me"}) is dropped, one it does not
// satisfy ({merchant="other"}) is an error of kind tsstore.ErrInvalid, and
// merchant="<merchant>" is added. ms is not modified.
func EnforceMatchers(ms []*labels.Matcher, merchant string) ([]*labels.Matcher, error) {
	out := make([]*labels.Matcher, 0, len(ms)+1)
	for _, m := range ms {
		if m.Name != MerchantLabel {
			out = append(out, m)
			continue
		}
		if !m.Matches(merchant) {
			return nil, tsstore.Errorf(tsstore.ErrInvalid, "matcher %s: a merchant token reads only its own merchant %q", m, merchant)
		}
	}
	return append(out, labels.MustNewMatcher(labels.MatchEqual, MerchantLabel, merchant)), nil
}

// EnforceExpr restricts every selector of expr to the merchant with
// EnforceMatchers: vector selectors and the selectors of range vectors,
// inside functions, aggregations, binary operators (or, unless) and
// subqueries alike. expr is modified in place.
func EnforceExpr(expr parser.Expr, merchant string) error {
	var err error
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok || err != nil {
			return nil
		}
		ms, e := EnforceMatchers(vs.LabelMatchers, merchant)
		if e != nil {
			err = fmt.Errorf("selector %s: %w", vs, e)
			return nil
		}
		vs.LabelMatchers = ms
		return nil
	})
	return err
}
