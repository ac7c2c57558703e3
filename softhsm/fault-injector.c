/*
 * A PKCS#11 module that forwards to a real one (SoftHSM) and can pretend the token was pulled out,
 * so tests can prove that the signer survives a removed and returned device.
 *
 *   XRD_FAULT_MODULE  path of the real PKCS#11 library
 *   XRD_FAULT_FLAG    path of a flag file: while it exists, the token is "removed"
 *   XRD_FAULT_RESET   path of a flag file: when it appears, every real session is closed once
 *                     (a device reset the application is not told about) and the file is deleted
 *   XRD_FAULT_PIN     path of a flag file: while it exists, C_Login answers CKR_PIN_INCORRECT
 *                     (the PIN was changed behind the application's back)
 *
 * While removed: C_GetSlotList(tokenPresent=TRUE) lists no slots, C_GetTokenInfo and C_OpenSession
 * answer CKR_TOKEN_NOT_PRESENT, and session calls answer CKR_DEVICE_REMOVED. On removal every real
 * session is closed, as with a real device, so after the token "returns" old session handles answer
 * CKR_SESSION_HANDLE_INVALID from SoftHSM itself and the login is gone.
 *
 * Only the calls that need it are wrapped; the rest of the function list is the real module's. The
 * PKCS#11 types are declared here by shape (all CK_ULONG or pointers) so no header is needed.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef unsigned long CK_ULONG;
typedef CK_ULONG CK_RV;
typedef unsigned char CK_BBOOL;

#define CKR_OK 0x0UL
#define CKR_GENERAL_ERROR 0x5UL
#define CKR_DEVICE_REMOVED 0x32UL
#define CKR_PIN_INCORRECT 0xA0UL
#define CKR_TOKEN_NOT_PRESENT 0xE0UL

/* CK_FUNCTION_LIST of PKCS#11 v2.40: a version, then 68 function pointers in a fixed order. */
#define FUNCTION_COUNT 68
typedef struct {
  unsigned char major, minor;
  void *fn[FUNCTION_COUNT];
} FunctionList;

enum {
  I_GetSlotList = 4, I_GetTokenInfo = 6, I_OpenSession = 12, I_CloseAllSessions = 14, I_Login = 18,
  I_CreateObject = 20, I_GetAttributeValue = 24, I_FindObjectsInit = 26, I_SignInit = 42, I_Sign = 43,
  I_VerifyInit = 48, I_GenerateKeyPair = 59
};

static FunctionList *real;
static FunctionList wrapped;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int was_removed;

typedef CK_RV (*GetSlotListFn)(CK_BBOOL, CK_ULONG *, CK_ULONG *);
typedef CK_RV (*CloseAllFn)(CK_ULONG);

static void close_all_real_sessions(void) {
  CK_ULONG slots[64], count = 64;
  if (((GetSlotListFn)real->fn[I_GetSlotList])(0, slots, &count) == CKR_OK) {
    for (CK_ULONG i = 0; i < count; i++) ((CloseAllFn)real->fn[I_CloseAllSessions])(slots[i]);
  }
}

/* True while the flag file exists; on the change to removed, the real sessions are all closed. */
static int removed(void) {
  const char *flag = getenv("XRD_FAULT_FLAG");
  const char *reset = getenv("XRD_FAULT_RESET");
  int now = flag != NULL && access(flag, F_OK) == 0;
  pthread_mutex_lock(&lock);
  if ((now && !was_removed) || (reset != NULL && unlink(reset) == 0)) close_all_real_sessions();
  was_removed = now;
  pthread_mutex_unlock(&lock);
  return now;
}

static CK_RV w_GetSlotList(CK_BBOOL present, CK_ULONG *list, CK_ULONG *count) {
  if (present && removed()) {
    *count = 0;
    return CKR_OK;
  }
  return ((GetSlotListFn)real->fn[I_GetSlotList])(present, list, count);
}

static CK_RV w_GetTokenInfo(CK_ULONG slot, void *info) {
  if (removed()) return CKR_TOKEN_NOT_PRESENT;
  return ((CK_RV(*)(CK_ULONG, void *))real->fn[I_GetTokenInfo])(slot, info);
}

static CK_RV w_OpenSession(CK_ULONG slot, CK_ULONG flags, void *app, void *notify, CK_ULONG *session) {
  if (removed()) return CKR_TOKEN_NOT_PRESENT;
  return ((CK_RV(*)(CK_ULONG, CK_ULONG, void *, void *, CK_ULONG *))real->fn[I_OpenSession])(slot, flags, app, notify, session);
}

static CK_RV w_Login(CK_ULONG s, CK_ULONG type, void *pin, CK_ULONG len) {
  if (removed()) return CKR_DEVICE_REMOVED;
  const char *pin_flag = getenv("XRD_FAULT_PIN");
  if (pin_flag != NULL && access(pin_flag, F_OK) == 0) return CKR_PIN_INCORRECT;
  return ((CK_RV(*)(CK_ULONG, CK_ULONG, void *, CK_ULONG))real->fn[I_Login])(s, type, pin, len);
}

static CK_RV w_CreateObject(CK_ULONG s, void *t, CK_ULONG n, CK_ULONG *h) {
  if (removed()) return CKR_DEVICE_REMOVED;
  return ((CK_RV(*)(CK_ULONG, void *, CK_ULONG, CK_ULONG *))real->fn[I_CreateObject])(s, t, n, h);
}

static CK_RV w_GetAttributeValue(CK_ULONG s, CK_ULONG o, void *t, CK_ULONG n) {
  if (removed()) return CKR_DEVICE_REMOVED;
  return ((CK_RV(*)(CK_ULONG, CK_ULONG, void *, CK_ULONG))real->fn[I_GetAttributeValue])(s, o, t, n);
}

static CK_RV w_FindObjectsInit(CK_ULONG s, void *t, CK_ULONG n) {
  if (removed()) return CKR_DEVICE_REMOVED;
  return ((CK_RV(*)(CK_ULONG, void *, CK_ULONG))real->fn[I_FindObjectsInit])(s, t, n);
}

static CK_RV w_SignInit(CK_ULONG s, void *m, CK_ULONG k) {
  if (removed()) return CKR_DEVICE_REMOVED;
  return ((CK_RV(*)(CK_ULONG, void *, CK_ULONG))real->fn[I_SignInit])(s, m, k);
}

static CK_RV w_Sign(CK_ULONG s, void *d, CK_ULONG dl, void *sig, CK_ULONG *sl) {
  if (removed()) return CKR_DEVICE_REMOVED;
  return ((CK_RV(*)(CK_ULONG, void *, CK_ULONG, void *, CK_ULONG *))real->fn[I_Sign])(s, d, dl, sig, sl);
}

static CK_RV w_VerifyInit(CK_ULONG s, void *m, CK_ULONG k) {
  if (removed()) return CKR_DEVICE_REMOVED;
  return ((CK_RV(*)(CK_ULONG, void *, CK_ULONG))real->fn[I_VerifyInit])(s, m, k);
}

static CK_RV w_GenerateKeyPair(CK_ULONG s, void *m, void *pt, CK_ULONG pn, void *vt, CK_ULONG vn, CK_ULONG *ph, CK_ULONG *vh) {
  if (removed()) return CKR_DEVICE_REMOVED;
  return ((CK_RV(*)(CK_ULONG, void *, void *, CK_ULONG, void *, CK_ULONG, CK_ULONG *, CK_ULONG *))real->fn[I_GenerateKeyPair])(s, m, pt, pn, vt, vn, ph, vh);
}

CK_RV C_GetFunctionList(FunctionList **out) {
  if (real == NULL) {
    const char *path = getenv("XRD_FAULT_MODULE");
    void *lib = path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
    if (lib == NULL) {
      fprintf(stderr, "fault-injector: cannot load XRD_FAULT_MODULE=%s: %s\n", path ? path : "(unset)", dlerror());
      return CKR_GENERAL_ERROR;
    }
    CK_RV (*get)(FunctionList **) = (CK_RV(*)(FunctionList **))dlsym(lib, "C_GetFunctionList");
    if (get == NULL || get(&real) != CKR_OK) return CKR_GENERAL_ERROR;
    memcpy(&wrapped, real, sizeof wrapped);
    wrapped.fn[3] = (void *)C_GetFunctionList;
    wrapped.fn[I_GetSlotList] = (void *)w_GetSlotList;
    wrapped.fn[I_GetTokenInfo] = (void *)w_GetTokenInfo;
    wrapped.fn[I_OpenSession] = (void *)w_OpenSession;
    wrapped.fn[I_Login] = (void *)w_Login;
    wrapped.fn[I_CreateObject] = (void *)w_CreateObject;
    wrapped.fn[I_GetAttributeValue] = (void *)w_GetAttributeValue;
    wrapped.fn[I_FindObjectsInit] = (void *)w_FindObjectsInit;
    wrapped.fn[I_SignInit] = (void *)w_SignInit;
    wrapped.fn[I_Sign] = (void *)w_Sign;
    wrapped.fn[I_VerifyInit] = (void *)w_VerifyInit;
    wrapped.fn[I_GenerateKeyPair] = (void *)w_GenerateKeyPair;
  }
  *out = &wrapped;
  return CKR_OK;
}
