/*
 * setTempRet0 and getTempRet0 in wasm. Emscripten 3.1.6 (Debian's) keeps this one word in JS, an
 * import called out of wasm twice each time a protected call sets its setjmp (every lua_resume,
 * pcall and error handler): later emscripten versions keep it in wasm, as here.
 */
static int temp_ret;

void setTempRet0 (int value) { temp_ret = value; }

int getTempRet0 (void) { return temp_ret; }
