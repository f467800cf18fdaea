#!/usr/bin/env Rscript
# Reference values for the single-arm proportion meta-analysis package,
# computed with R's metafor.
#
# Run from the repository root:
#     Rscript tests/reference/make_reference.R
#
# Inputs  : tests/reference/inputs/{miller1978,edge_cases,sarcoma_proportions,
#           sarcoma_medians}.csv ; pritz1997 comes from metadat::dat.pritz1997
#           and is also written to inputs/pritz1997.csv for the Python tests.
# Outputs : tests/reference/metafor_values.csv  (long format:
#           dataset,outcome,subgroup,fit,quantity,study,value)
#           tests/reference/R_versions.txt
#
# Conventions
#   * value is sprintf("%.17g", x); NA/NaN is written as an empty field.
#   * study is filled only for per-study quantities.
#   * Rows are written in the order they are computed; the order depends only
#     on the input files (outcomes / subgroup levels are sorted with
#     method = "radix", i.e. C-locale byte order), so reruns are byte-identical.
#   * Every fit is wrapped in tryCatch: a failing fit writes nothing and prints
#     a message; warnings are printed and listed at the end.
#   * Prediction intervals: predict(res, pi.type = "riley") -- a hidden
#     argument of predict.rma in metafor 3.8-1 (lower case; "Riley" is NOT
#     recognised in 3.8-1 and silently falls back to the z-based interval).
#     It uses b +/- qt(0.975, k - 2) * sqrt(se^2 + tau2), i.e. Higgins et al.
#     (2009) / Riley et al. (2011). se is the fit's own se (the HKSJ se for
#     test = "knha" fits). We write NA when k < 3 (metafor would clamp df to 1).
#   * k = 1: metafor's rma() returns b = yi, se = sqrt(vi) with a degenerate
#     tau2 = 0; we write only b, se, ci_lb, ci_ub, zval, pval, k (and the
#     back-transformed est/ci), no heterogeneity / PI / confint quantities.

suppressPackageStartupMessages({
  library(metafor)
  library(metadat)
})

options(warn = 1)

# Tight numerical control, so the references are the estimators' exact values rather than
# metafor's default stopping points (REML's Fisher scoring stops at a change of 1e-5; PM and the
# Q-profile roots use uniroot's tol = .Machine$double.eps^0.25; Q-profile searches only
# tau2 <= 100). Every rma() call below goes through this wrapper:
#   metafor::rma(..., control = list(threshold = 1e-12, tol = 1e-12, maxiter = 1000))
#   confint(res, control = list(tol = 1e-12, tau2.max = 1e6, maxiter = 1000))
RMA_CTRL <- list(threshold = 1e-12, tol = 1e-12, maxiter = 1000)
CI_CTRL <- list(tol = 1e-12, tau2.max = 1e6, maxiter = 1000)
rma <- function(...) metafor::rma(..., control = RMA_CTRL)
ref_dir <- file.path("tests", "reference")
in_dir <- file.path(ref_dir, "inputs")
if (!dir.exists(in_dir)) stop("Run from the repository root (tests/reference/inputs not found).")

# ----------------------------------------------------------------------------
# output collection
# ----------------------------------------------------------------------------
rows <- list()
nrow_out <- 0L
warn_log <- character(0)
fail_log <- character(0)

fmt <- function(x) {
  x <- as.numeric(x)
  ifelse(is.na(x), "", sprintf("%.17g", x))
}

# add one or more values (vector 'value'; 'study' same length or "")
emit <- function(ctx, fit, quantity, value, study = "") {
  value <- as.numeric(value)
  if (length(value) == 0) return(invisible())
  if (length(study) == 1 && length(value) > 1) study <- rep(study, length(value))
  nrow_out <<- nrow_out + 1L
  rows[[nrow_out]] <<- data.frame(
    dataset = ctx$dataset, outcome = ctx$outcome, subgroup = ctx$subgroup,
    fit = fit, quantity = quantity, study = as.character(study),
    value = fmt(value), stringsAsFactors = FALSE)
  invisible()
}

# emit a named list of scalars
emit_list <- function(ctx, fit, lst) {
  for (nm in names(lst)) emit(ctx, fit, nm, lst[[nm]])
}

ctx_label <- function(ctx, fit) paste(ctx$dataset, ctx$outcome, ctx$subgroup, fit, sep = " / ")

# run expr; on error print + log and return NULL; print + log warnings
safely <- function(ctx, fit, expr) {
  label <- ctx_label(ctx, fit)
  n0 <- nrow_out   # on error, rows emitted by this fit are discarded
  withCallingHandlers(
    tryCatch(expr, error = function(e) {
      msg <- paste0("FAILED   ", label, ": ", conditionMessage(e))
      message(msg)
      fail_log <<- c(fail_log, msg)
      if (nrow_out > n0) {
        rows[(n0 + 1L):nrow_out] <<- NULL
        nrow_out <<- n0
      }
      NULL
    }),
    warning = function(w) {
      msg <- paste0("WARNING  ", label, ": ", conditionMessage(w))
      message(msg)
      warn_log <<- c(warn_log, msg)
      invokeRestart("muffleWarning")
    })
}

hm <- function(ni) 1 / mean(1 / ni)

# back-transformation for a given measure; ni = the ni of the studies pooled
backtransf <- function(x, measure, ni) {
  switch(measure,
         PFT  = transf.ipft.hm(x, targs = list(ni = ni)),
         PLO  = transf.ilogit(x),
         PRAW = x,
         LOG  = exp(x),
         stop("unknown measure"))
}

# ----------------------------------------------------------------------------
# quantities of an rma.uni fit
# ----------------------------------------------------------------------------
# res: rma.uni object; measure: for back-transformation; ni: study sizes
# re: TRUE for random-effects fits (confint), FALSE for EE
write_rma <- function(ctx, fit, res, measure, ni, re = TRUE) {
  k <- res$k
  b <- c(res$beta)
  out <- list(b = b, se = res$se, ci_lb = res$ci.lb, ci_ub = res$ci.ub,
              zval = res$zval, pval = res$pval)
  if (k >= 2) {
    out <- c(out, list(tau2 = res$tau2, se_tau2 = res$se.tau2, i2 = res$I2,
                       h2 = res$H2, q = res$QE, q_df = k - 1, q_p = res$QEp))
  }
  out$k <- k
  pi_lb <- NA_real_; pi_ub <- NA_real_
  if (re && k >= 2) {
    # predict(res, pi.type = "riley")   -> t_{k-2} prediction interval
    if (k >= 3) {
      pr <- predict(res, pi.type = "riley")
      pi_lb <- pr$pi.lb; pi_ub <- pr$pi.ub
    }
    out <- c(out, list(pi_lb = pi_lb, pi_ub = pi_ub))
  }
  emit_list(ctx, fit, out)
  if (re && k >= 2) {
    # confint(res, control = CI_CTRL)   -> Q-profile CIs for tau2, I2, H2
    ci <- safely(ctx, paste0(fit, " confint"), confint(res, control = CI_CTRL)$random)
    if (!is.null(ci)) {
      emit_list(ctx, fit, list(
        tau2_lb = ci["tau^2", "ci.lb"], tau2_ub = ci["tau^2", "ci.ub"],
        i2_lb = ci["I^2(%)", "ci.lb"], i2_ub = ci["I^2(%)", "ci.ub"],
        h2_lb = ci["H^2", "ci.lb"], h2_ub = ci["H^2", "ci.ub"]))
    }
  }
  if (!is.null(measure)) {
    bt <- list(est_bt = backtransf(b, measure, ni),
               ci_lb_bt = backtransf(res$ci.lb, measure, ni),
               ci_ub_bt = backtransf(res$ci.ub, measure, ni))
    if (re && k >= 2) {
      bt$pi_lb_bt <- if (is.na(pi_lb)) NA_real_ else backtransf(pi_lb, measure, ni)
      bt$pi_ub_bt <- if (is.na(pi_ub)) NA_real_ else backtransf(pi_ub, measure, ni)
    }
    emit_list(ctx, fit, bt)
  }
}

# ----------------------------------------------------------------------------
# sensitivity / small-study analyses on one rma.uni fit (k >= 3)
# ----------------------------------------------------------------------------
write_sensitivity <- function(ctx, tag, res, measure, ni, ids) {
  k <- res$k
  # leave1out(res)
  safely(ctx, paste0("LOO-", tag), {
    l <- leave1out(res)
    fit <- paste0("LOO-", tag)
    for (i in seq_len(k)) {
      ni_i <- ni[-i]   # back-transform with the k-1 studies actually pooled
      emit_list_study <- list(
        loo_b = l$estimate[i], loo_se = l$se[i], loo_ci_lb = l$ci.lb[i],
        loo_ci_ub = l$ci.ub[i], loo_tau2 = l$tau2[i], loo_i2 = l$I2[i],
        loo_q = l$Q[i],
        loo_est_bt = backtransf(l$estimate[i], measure, ni_i),
        loo_ci_lb_bt = backtransf(l$ci.lb[i], measure, ni_i),
        loo_ci_ub_bt = backtransf(l$ci.ub[i], measure, ni_i))
      for (nm in names(emit_list_study)) emit(ctx, fit, nm, emit_list_study[[nm]], ids[i])
    }
  })
  # influence(res)
  safely(ctx, paste0("INF-", tag), {
    inf <- influence(res)$inf
    fit <- paste0("INF-", tag)
    for (i in seq_len(k)) {
      vals <- list(rstudent = inf$rstudent[i], dffits = inf$dffits[i],
                   cook_d = inf$cook.d[i], cov_r = inf$cov.r[i],
                   tau2_del = inf$tau2.del[i], qe_del = inf$QE.del[i],
                   hat = inf$hat[i], weight = inf$weight[i])
      for (nm in names(vals)) emit(ctx, fit, nm, vals[[nm]], ids[i])
    }
  })
  # baujat(res)   (plot to a null device; coordinates returned invisibly)
  safely(ctx, paste0("BAUJAT-", tag), {
    grDevices::pdf(NULL)
    bj <- tryCatch(baujat(res), finally = grDevices::dev.off())
    fit <- paste0("BAUJAT-", tag)
    for (i in seq_len(k)) {
      emit(ctx, fit, "baujat_x", bj$x[i], ids[i])
      emit(ctx, fit, "baujat_y", bj$y[i], ids[i])
    }
  })
  # regtest(res, model = "lm", predictor = "sei")
  safely(ctx, paste0("EGGER-", tag), {
    rt <- regtest(res, model = "lm", predictor = "sei")
    emit_list(ctx, paste0("EGGER-", tag),
              list(zval = rt$zval, pval = rt$pval, dfs = rt$dfs, est = rt$est))
  })
  # ranktest(res)
  safely(ctx, paste0("BEGG-", tag), {
    rk <- ranktest(res)
    emit_list(ctx, paste0("BEGG-", tag), list(tau = rk$tau, pval = rk$pval))
  })
  # trimfill(res)   (estimator = "L0", side chosen by metafor's default rule)
  safely(ctx, paste0("TRIMFILL-", tag), {
    tf <- trimfill(res)
    fit <- paste0("TRIMFILL-", tag)
    # back-transform with the ni of the OBSERVED studies only
    emit_list(ctx, fit, list(
      k0 = tf$k0, side = if (tf$side == "left") -1 else 1,
      b = c(tf$beta), se = tf$se, ci_lb = tf$ci.lb, ci_ub = tf$ci.ub,
      tau2 = tf$tau2,
      est_bt = backtransf(c(tf$beta), measure, ni),
      ci_lb_bt = backtransf(tf$ci.lb, measure, ni),
      ci_ub_bt = backtransf(tf$ci.ub, measure, ni)))
    if (tf$k0 > 0) {
      fy <- tf$yi[tf$fill]
      fv <- tf$vi[tf$fill]
      for (j in seq_along(fy)) {
        emit(ctx, fit, "yi", fy[j], paste0("filled", j))
        emit(ctx, fit, "vi", fv[j], paste0("filled", j))
      }
    }
  })
}

# ----------------------------------------------------------------------------
# full analysis of one set of proportions
# d: data.frame(study, events, total)
# ----------------------------------------------------------------------------
analyse_props <- function(ctx, d, plo_sensitivity = FALSE) {
  message("== ", ctx$dataset, " / ", ctx$outcome, " / ", ctx$subgroup, " (k = ", nrow(d), ")")
  xi <- d$events; ni <- d$total; ids <- as.character(d$study); k <- nrow(d)

  # escalc(measure = "PFT" / "PLO" / "PR", xi = xi, ni = ni)
  # (defaults: add = 1/2, to = "only0" -- only relevant for PLO)
  es <- list()
  for (m in c("PFT", "PLO", "PRAW")) {
    # (metafor calls the raw proportion "PR"; our label is PRAW)
    e <- safely(ctx, paste0("ESCALC-", m),
                escalc(measure = if (m == "PRAW") "PR" else m, xi = xi, ni = ni))
    es[[m]] <- e
    if (!is.null(e)) {
      for (i in seq_len(k)) {
        emit(ctx, paste0("ESCALC-", m), "yi", e$yi[i], ids[i])
        emit(ctx, paste0("ESCALC-", m), "vi", e$vi[i], ids[i])
      }
    }
  }

  # Random-effects / common-effect fits:
  #   rma(yi, vi, method = "DL" | "REML" | "PM")              test = "z"
  #   rma(yi, vi, method = "DL" | "REML", test = "knha")       (-HKSJ)
  #   rma(yi, vi, method = "EE")                               (COMMON-)
  specs <- list(
    list(fit = "PFT-DL",        m = "PFT",  method = "DL",   test = "z"),
    list(fit = "PFT-REML",      m = "PFT",  method = "REML", test = "z"),
    list(fit = "PFT-PM",        m = "PFT",  method = "PM",   test = "z"),
    list(fit = "PLO-DL",        m = "PLO",  method = "DL",   test = "z"),
    list(fit = "PLO-REML",      m = "PLO",  method = "REML", test = "z"),
    list(fit = "PLO-PM",        m = "PLO",  method = "PM",   test = "z"),
    list(fit = "PRAW-DL",       m = "PRAW", method = "DL",   test = "z"),
    list(fit = "PFT-DL-HKSJ",   m = "PFT",  method = "DL",   test = "knha"),
    list(fit = "PFT-REML-HKSJ", m = "PFT",  method = "REML", test = "knha"),
    list(fit = "PLO-REML-HKSJ", m = "PLO",  method = "REML", test = "knha"),
    list(fit = "COMMON-PFT",    m = "PFT",  method = "EE",   test = "z"),
    list(fit = "COMMON-PLO",    m = "PLO",  method = "EE",   test = "z"))
  fits <- list()
  for (s in specs) {
    e <- es[[s$m]]
    if (is.null(e)) next
    if (k == 1 && s$test == "knha") {
      message("skip     ", ctx_label(ctx, s$fit), ": k = 1 (no df for t)")
      next
    }
    res <- safely(ctx, s$fit, {
      r <- rma(yi = e$yi, vi = e$vi, method = s$method, test = s$test)
      write_rma(ctx, s$fit, r, s$m, ni, re = s$method != "EE")
      r
    })
    fits[[s$fit]] <- res
  }

  # GLMM: rma.glmm(measure = "PLO", xi = xi, ni = ni, method = "ML")
  # metafor 3.8-1 default nAGQ = 7 (adaptive Gauss-Hermite quadrature, lme4::glmer)
  if (k >= 2) {
    safely(ctx, "GLMM-ML", {
      g <- rma.glmm(measure = "PLO", xi = xi, ni = ni, method = "ML")
      emit_list(ctx, "GLMM-ML", list(
        b = c(g$beta), se = g$se, ci_lb = g$ci.lb, ci_ub = g$ci.ub,
        zval = g$zval, pval = g$pval, tau2 = g$tau2, i2 = g$I2,
        q = g$QE.Wld, q_p = g$QEp.Wld, lrt = g$QE.LRT, lrt_p = g$QEp.LRT,
        loglik = as.numeric(logLik(g)), k = g$k,
        est_bt = transf.ilogit(c(g$beta)),
        ci_lb_bt = transf.ilogit(g$ci.lb), ci_ub_bt = transf.ilogit(g$ci.ub)))
    })
  } else {
    message("skip     ", ctx_label(ctx, "GLMM-ML"), ": k < 2")
  }

  # sensitivity / small-study analyses on PFT-DL (and PLO-DL if requested)
  if (k >= 3) {
    if (!is.null(fits[["PFT-DL"]]))
      write_sensitivity(ctx, "PFT-DL", fits[["PFT-DL"]], "PFT", ni, ids)
    if (plo_sensitivity && !is.null(fits[["PLO-DL"]]))
      write_sensitivity(ctx, "PLO-DL", fits[["PLO-DL"]], "PLO", ni, ids)
  } else {
    message("skip     ", ctx_label(ctx, "sensitivity"), ": k < 3")
  }
  invisible(fits)
}

# ----------------------------------------------------------------------------
# subgroup-difference test
# For each subgroup g: rma(yi, vi, method = "DL") (k_g = 1: b_g = yi, se_g = sqrt(vi)),
# then rma(yi = b_g, sei = se_g, method = "EE"): q_between = QE, df = G - 1.
# Per-group b / se are written with subgroup = level, the test with
# subgroup = "overall".
# ----------------------------------------------------------------------------
subgroup_test <- function(ctx, d, groups) {
  levels <- sort(unique(groups), method = "radix")
  if (length(levels) < 2) {
    message("skip     ", ctx_label(ctx, "SUBGROUP-*"), ": < 2 subgroup levels")
    return(invisible())
  }
  for (m in c("PFT", "PLO")) {
    fit <- paste0("SUBGROUP-", m, "-DL")
    safely(ctx, fit, {
      bg <- numeric(0); sg <- numeric(0)
      for (lv in levels) {
        dd <- d[groups == lv, , drop = FALSE]
        e <- escalc(measure = m, xi = dd$events, ni = dd$total)
        if (nrow(dd) == 1) {
          bg <- c(bg, e$yi[1]); sg <- c(sg, sqrt(e$vi[1]))
        } else {
          r <- rma(yi = e$yi, vi = e$vi, method = "DL")
          bg <- c(bg, c(r$beta)); sg <- c(sg, r$se)
        }
      }
      tst <- rma(yi = bg, sei = sg, method = "EE")
      for (j in seq_along(levels)) {
        cj <- ctx; cj$subgroup <- levels[j]
        emit(cj, fit, "b", bg[j]); emit(cj, fit, "se", sg[j])
        emit(cj, fit, "k", sum(groups == levels[j]))
      }
      emit_list(ctx, fit, list(q_between = tst$QE, q_between_df = tst$k - 1,
                               q_between_p = tst$QEp))
    })
  }
}

# ----------------------------------------------------------------------------
# medians (months)
# ----------------------------------------------------------------------------
analyse_medians <- function(ctx, d) {
  message("== ", ctx$dataset, " / ", ctx$outcome, " / ", ctx$subgroup, " (medians, n = ", nrow(d), ")")
  # descriptive over all rows with an estimate (with or without CI)
  est <- d$estimate[!is.na(d$estimate)]
  emit_list(ctx, "MEDIAN-DESC", list(
    k = length(est),
    min = if (length(est)) min(est) else NA, max = if (length(est)) max(est) else NA,
    mean = if (length(est)) mean(est) else NA,
    sd = if (length(est) >= 2) sd(est) else NA))
  dd <- d[!is.na(d$estimate) & !is.na(d$ci_low) & !is.na(d$ci_high), , drop = FALSE]
  if (nrow(dd) < nrow(d))
    message("note     ", ctx_label(ctx, "MEDIAN-*"), ": ", nrow(d) - nrow(dd),
            " row(s) without both CI bounds excluded from pooling")
  if (nrow(dd) == 0) {
    message("skip     ", ctx_label(ctx, "MEDIAN-*"), ": no rows with CI")
    return(invisible())
  }
  z <- 1.959964  # the review's convention: SE = (upper - lower) / (2 x 1.959964)
  # rma(yi = estimate, sei = (ci_high - ci_low) / (2 * 1.959964), method = "DL" / "REML")
  for (meth in c("DL", "REML")) {
    fit <- paste0("MEDIAN-", meth)
    safely(ctx, fit, {
      r <- rma(yi = dd$estimate, sei = (dd$ci_high - dd$ci_low) / (2 * z), method = meth)
      write_rma(ctx, fit, r, NULL, NULL, re = TRUE)
    })
  }
  # rma(yi = log(estimate), sei = (log(ci_high) - log(ci_low)) / (2 * 1.959964), method = "DL")
  # back-transformed with exp()
  safely(ctx, "LOGMEDIAN-DL", {
    r <- rma(yi = log(dd$estimate), sei = (log(dd$ci_high) - log(dd$ci_low)) / (2 * z),
             method = "DL")
    write_rma(ctx, "LOGMEDIAN-DL", r, "LOG", NULL, re = TRUE)
  })
}

# ============================================================================
# datasets
# ============================================================================
read_in <- function(f) {
  p <- file.path(in_dir, f)
  if (!file.exists(p)) stop("missing input ", p)
  utils::read.csv(p, stringsAsFactors = FALSE, na.strings = c("", "NA"),
                  strip.white = TRUE)
}

drop_incomplete <- function(d, cols, label) {
  bad <- !stats::complete.cases(d[, cols, drop = FALSE])
  if (any(bad)) message("note     ", label, ": dropping ", sum(bad),
                        " row(s) with missing ", paste(cols, collapse = "/"),
                        ": ", paste(d$study[bad], collapse = ", "))
  d[!bad, , drop = FALSE]
}

# --- miller1978 -------------------------------------------------------------
miller <- read_in("miller1978.csv")
ctx <- list(dataset = "miller1978", outcome = "orr", subgroup = "overall")
analyse_props(ctx, miller)
# subgroup-difference test with A = miller1, miller2 ; B = miller3, miller4
subgroup_test(ctx, miller,
              ifelse(miller$study %in% c("miller1", "miller2"), "A", "B"))

# --- pritz1997 (metadat::dat.pritz1997; xi, ni, study) ----------------------
pritz <- data.frame(study = as.character(dat.pritz1997$study),
                    events = dat.pritz1997$xi, total = dat.pritz1997$ni,
                    stringsAsFactors = FALSE)
utils::write.csv(pritz, file.path(in_dir, "pritz1997.csv"), row.names = FALSE, quote = FALSE)
analyse_props(list(dataset = "pritz1997", outcome = "orr", subgroup = "overall"),
              pritz, plo_sensitivity = TRUE)

# --- edge cases ---------------------------------------------------------------
edge <- read_in("edge_cases.csv")
for (ds in unique(edge$dataset)) {   # file order
  analyse_props(list(dataset = ds, outcome = "orr", subgroup = "overall"),
                edge[edge$dataset == ds, c("study", "events", "total")])
}

# --- sarcoma proportions ------------------------------------------------------
sp <- read_in("sarcoma_proportions.csv")
sp$subgroup <- as.character(sp$subgroup)
sp <- drop_incomplete(sp, c("outcome", "subgroup", "study", "events", "total"),
                      "sarcoma_proportions")
for (oc in sort(unique(sp$outcome), method = "radix")) {
  d <- sp[sp$outcome == oc, , drop = FALSE]
  ctx <- list(dataset = "sarcoma", outcome = oc, subgroup = "overall")
  analyse_props(ctx, d[, c("study", "events", "total")])
  for (lv in sort(unique(d$subgroup), method = "radix")) {
    analyse_props(list(dataset = "sarcoma", outcome = oc, subgroup = lv),
                  d[d$subgroup == lv, c("study", "events", "total"), drop = FALSE])
  }
  subgroup_test(ctx, d, d$subgroup)
}

# --- sarcoma medians ------------------------------------------------------------
sm <- read_in("sarcoma_medians.csv")
sm$subgroup <- as.character(sm$subgroup)
sm <- drop_incomplete(sm, c("outcome", "subgroup", "study"), "sarcoma_medians")
for (oc in sort(unique(sm$outcome), method = "radix")) {
  d <- sm[sm$outcome == oc, , drop = FALSE]
  analyse_medians(list(dataset = "sarcoma", outcome = oc, subgroup = "overall"), d)
  for (lv in sort(unique(d$subgroup), method = "radix")) {
    analyse_medians(list(dataset = "sarcoma", outcome = oc, subgroup = lv),
                    d[d$subgroup == lv, , drop = FALSE])
  }
}

# ============================================================================
# write outputs
# ============================================================================
out <- do.call(rbind, rows)
out_file <- file.path(ref_dir, "metafor_values.csv")
# write by hand: no quoting, "\n" line endings, deterministic
csv_field <- function(x) {
  x <- as.character(x)
  need <- grepl('[,"\n]', x)
  x[need] <- paste0('"', gsub('"', '""', x[need]), '"')
  x
}
lines <- c("dataset,outcome,subgroup,fit,quantity,study,value",
           do.call(paste, c(lapply(out, csv_field), sep = ",")))
con <- file(out_file, open = "wb")
writeLines(lines, con, sep = "\n")
close(con)

ver <- c(R.version.string,
         paste("metafor", as.character(packageVersion("metafor"))),
         paste("metadat", as.character(packageVersion("metadat"))),
         paste("lme4", as.character(packageVersion("lme4"))))
con <- file(file.path(ref_dir, "R_versions.txt"), open = "wb")
writeLines(ver, con, sep = "\n")
close(con)

message("\nwrote ", nrow(out), " rows to ", out_file)
message("failed fits: ", length(fail_log))
for (m in fail_log) message("  ", m)
message("warnings: ", length(warn_log))
for (m in unique(warn_log)) message("  ", m)
