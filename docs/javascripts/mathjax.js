// MathJax for pymdownx.arithmatex (generic mode): \( ... \) inline, \[ ... \] display.
// MathJax 3.2.2 is vendored (javascripts/mathjax/tex-svg.js, Apache-2.0, from `npm pack mathjax@3`):
// the site loads nothing from the network. SVG output carries its own glyphs (no font files);
// the menu is off, since its accessibility explorer would fetch the speech engine from a CDN.
window.MathJax = {
  tex: {inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: true, processEnvironments: true},
  svg: {fontCache: "global"},
  options: {ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex", enableMenu: false},
};
document$.subscribe(() => { MathJax.typesetPromise(); });
