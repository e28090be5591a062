package main

import (
	"fmt"
	"math"
	"strings"
)

// The chart: two panels with a log y axis (messages/s). Left: throughput
// against batch size, one consumer process. Right: against the number of
// consumer processes, solid at batch 100 and dashed at batch 1.

var palette = map[string]string{
	"daguq":          "#1f77b4",
	"goqite":         "#ff7f0e",
	"River (SQLite)": "#2ca02c",
	"raw SQLite":     "#7f7f7f",
	shellName:        "#d62728",
}

type panel struct {
	x0, y0, w, h  float64 // plot area
	title, xlabel string
	xs            []string
}

type series struct {
	name   string
	ys     []float64 // 0: missing
	dashed bool
}

func (r *report) svg() string {
	const width, height = 900, 420
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	sb.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")

	names := r.systemNames()
	var left, right []series
	lo, hi := math.Inf(1), math.Inf(-1)
	note := func(v float64) {
		if v > 0 {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	for _, s := range names {
		var ys []float64
		for _, b := range r.c.batches {
			v, _ := r.med(s, metricConsume(b, 1))
			ys = append(ys, v)
			note(v)
		}
		left = append(left, series{name: s, ys: ys})
		for _, b := range []int{100, 1} {
			var ys []float64
			for _, p := range r.c.procs {
				v, _ := r.med(s, metricConsume(b, p))
				ys = append(ys, v)
				note(v)
			}
			right = append(right, series{name: s, ys: ys, dashed: b == 1})
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 1, 10
	}
	ymin := math.Pow(10, math.Floor(math.Log10(lo)))
	ymax := math.Pow(10, math.Ceil(math.Log10(hi)))
	if ymax <= ymin {
		ymax = ymin * 10
	}

	var bx, px []string
	for _, b := range r.c.batches {
		bx = append(bx, fmt.Sprint(b))
	}
	for _, p := range r.c.procs {
		px = append(px, fmt.Sprint(p))
	}
	pl := panel{x0: 90, y0: 40, w: 300, h: 300, title: "Drain vs batch size (1 consumer process)", xlabel: "batch size", xs: bx}
	pr := panel{x0: 480, y0: 40, w: 200, h: 300, title: "Drain vs consumer processes", xlabel: "consumer processes", xs: px}
	drawPanel(&sb, pl, left, ymin, ymax)
	drawPanel(&sb, pr, right, ymin, ymax)

	// Legend.
	lx, ly := 705.0, 60.0
	for i, s := range names {
		y := ly + float64(i)*22
		fmt.Fprintf(&sb, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2.5"/>`+"\n", lx, y, lx+28, y, color(s))
		fmt.Fprintf(&sb, `<text x="%.0f" y="%.0f" dominant-baseline="middle">%s</text>`+"\n", lx+36, y, esc(s))
	}
	y := ly + float64(len(names))*22 + 14
	fmt.Fprintf(&sb, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black" stroke-width="2"/>`+"\n", lx, y, lx+28, y)
	fmt.Fprintf(&sb, `<text x="%.0f" y="%.0f" dominant-baseline="middle">batch 100 (right)</text>`+"\n", lx+36, y)
	y += 20
	fmt.Fprintf(&sb, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black" stroke-width="2" stroke-dasharray="5,4"/>`+"\n", lx, y, lx+28, y)
	fmt.Fprintf(&sb, `<text x="%.0f" y="%.0f" dominant-baseline="middle">batch 1 (right)</text>`+"\n", lx+36, y)
	fmt.Fprintf(&sb, `<text x="%d" y="%d" font-size="11" fill="#555">median of %d runs, %s × 1 KiB (shell glue: %s, which loses most messages with 4 consumers); log scale</text>`+"\n",
		80, height-14, r.c.runs, commas(int64(r.c.n)), commas(int64(r.c.shellN)))
	sb.WriteString("</svg>\n")
	return sb.String()
}

func drawPanel(sb *strings.Builder, p panel, ss []series, ymin, ymax float64) {
	yOf := func(v float64) float64 {
		return p.y0 + p.h - (math.Log10(v)-math.Log10(ymin))/(math.Log10(ymax)-math.Log10(ymin))*p.h
	}
	xOf := func(i int) float64 {
		if len(p.xs) == 1 {
			return p.x0 + p.w/2
		}
		return p.x0 + 20 + float64(i)*(p.w-40)/float64(len(p.xs)-1)
	}
	fmt.Fprintf(sb, `<text x="%.0f" y="%.0f" font-weight="bold" text-anchor="middle">%s</text>`+"\n", p.x0+p.w/2, p.y0-16, esc(p.title))
	fmt.Fprintf(sb, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", p.x0, p.y0, p.w, p.h)
	for e := math.Log10(ymin); e <= math.Log10(ymax)+1e-9; e++ {
		v := math.Pow(10, e)
		y := yOf(v)
		fmt.Fprintf(sb, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/>`+"\n", p.x0, y, p.x0+p.w, y)
		fmt.Fprintf(sb, `<text x="%.0f" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", p.x0-6, y, commas(int64(v)))
	}
	for i, x := range p.xs {
		fmt.Fprintf(sb, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", xOf(i), p.y0+p.h+16, x)
	}
	fmt.Fprintf(sb, `<text x="%.0f" y="%.0f" text-anchor="middle">%s</text>`+"\n", p.x0+p.w/2, p.y0+p.h+34, esc(p.xlabel))
	fmt.Fprintf(sb, `<text transform="translate(%.0f,%.0f) rotate(-90)" text-anchor="middle" fill="#555">messages/s</text>`+"\n", p.x0-58, p.y0+p.h/2)
	for _, s := range ss {
		var pts []string
		for i, v := range s.ys {
			if v > 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", xOf(i), yOf(v)))
			}
		}
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="5,4"`
		}
		if len(pts) > 1 {
			fmt.Fprintf(sb, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2.5"%s/>`+"\n", strings.Join(pts, " "), color(s.name), dash)
		}
		for _, pt := range pts {
			xy := strings.Split(pt, ",")
			fmt.Fprintf(sb, `<circle cx="%s" cy="%s" r="3.5" fill="%s"/>`+"\n", xy[0], xy[1], color(s.name))
		}
	}
}

func color(name string) string {
	if c, ok := palette[name]; ok {
		return c
	}
	return "black"
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
