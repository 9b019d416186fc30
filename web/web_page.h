// The web page served at / : plain HTML and JavaScript over the HTTP API, no build step.
#ifndef REWIND_WEB_WEB_PAGE_H_
#define REWIND_WEB_WEB_PAGE_H_

namespace rwd {

const char* WebPageHtml();

}  // namespace rwd

#endif  // REWIND_WEB_WEB_PAGE_H_
