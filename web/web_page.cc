#include "web/web_page.h"

namespace rwd {

const char* WebPageHtml() {
  return R"html(<!doctype html>
<html><head><meta charset="utf-8"><title>rewind</title></head>
<body><h1>rewind</h1><p>See /stats and POST /query.</p></body></html>
)html";
}

}  // namespace rwd
