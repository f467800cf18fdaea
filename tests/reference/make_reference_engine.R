#!/usr/bin/env Rscript
# Reference values for the frequentist engine of issue 11: prediction-interval conventions, the
# Hartung-Knapp ad hoc rules, I^2 conventions, the complete GLMM (LRT, common effect, test = "t",
# prediction interval, population-averaged proportion), subgroup tests with a common tau^2,
# meta-regression and the sample-size (Peters) regression test.
#
# Run from the repository root:
#     Rscript tests/reference/make_reference_engine.R
#
# Inputs  : tests/reference/inputs/{miller1978,pritz1997,edge_cases,sarcoma_proportions}.csv;
#           metadat::dat.debruin2009 and metadat::dat.bcg, written to inputs/debruin2009.csv and
#           inputs/bcg.csv for the Python tests.
# Output  : tests/reference/metafor_engine_values.csv, the long format of metafor_values.csv
#           (dataset,outcome,subgroup,fit,quantity,study,value; value sprintf("%.17g"), NA empty).
#           For coefficients, `study` holds metafor's coefficient name (same order as the model
#           matrix).
#
# Expected FAILED lines (metafor refuses; the Python tests check that we report "not run" or "not
# estimable" there): subgroup models with 2 studies in 2 subgroups ("Number of parameters to be
# estimated is larger than the number of observations") and the sample-size tests on the tau0 set,
# whose studies all have n = 50 ("Model matrix no longer of full rank").
# R's meta package is not in this machine's apt sources (no r-cran-meta), so meta's conventions are
# checked against the formulas of its documentation applied to metafor's fits.
#
# The R call that produces each block of values is written above it. Where metafor 3.8-1 has no
# option for a convention (the IQWiG "wider CI" rule, I^2 from Q), the value is computed with the
# formula of the meta documentation from metafor's own fits, and the formula is written here.

suppressPackageStartupMessages({
  library(metafor)
  library(metadat)
  library(lme4)
  library(numDeriv)
})
options(warn = 1)

RMA_CTRL <- list(threshold = 1e-12, tol = 1e-12, maxiter = 1000)
rma <- function(...) metafor::rma(..., control = RMA_CTRL)
# GLMMs with tight optimiser settings, so that the references are the maximum of the likelihood
# rather than lme4's default stopping point (which differs from it by up to ~1e-5 relative, and
# glm's default epsilon = 1e-8 on the deviance leaves the common-effect SE ~1e-5 off). Every
# rma.glmm() call below goes through this wrapper:
#   metafor::rma.glmm(..., control = list(glmCtrl = list(epsilon = 1e-12, maxit = 100),
#       glmerCtrl = list(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5))))
GLMM_CTRL <- list(glmCtrl = list(epsilon = 1e-12, maxit = 100),
                  glmerCtrl = list(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5)))
rma.glmm <- function(...) metafor::rma.glmm(..., control = GLMM_CTRL)
ref_dir <- file.path("tests", "reference")
in_dir <- file.path(ref_dir, "inputs")
if (!dir.exists(in_dir)) stop("Run from the repository root (tests/reference/inputs not found).")

rows <- list()
nrow_out <- 0L
fail_log <- character(0)
fmt <- function(x) { x <- as.numeric(x); ifelse(is.na(x), "", sprintf("%.17g", x)) }
emit <- function(ctx, fit, quantity, value, study = "") {
  value <- as.numeric(value)
  if (length(value) == 0) return(invisible())
  if (length(study) == 1 && length(value) > 1) study <- rep(study, length(value))
  nrow_out <<- nrow_out + 1L
  rows[[nrow_out]] <<- data.frame(dataset = ctx$dataset, outcome = ctx$outcome,
                                  subgroup = ctx$subgroup, fit = fit, quantity = quantity,
                                  study = as.character(study), value = fmt(value),
                                  stringsAsFactors = FALSE)
  invisible()
}
emit_list <- function(ctx, fit, lst) for (nm in names(lst)) emit(ctx, fit, nm, lst[[nm]])
safely <- function(ctx, fit, expr) {
  label <- paste(ctx$dataset, ctx$outcome, ctx$subgroup, fit, sep = " / ")
  n0 <- nrow_out
  withCallingHandlers(
    tryCatch(expr, error = function(e) {
      msg <- paste0("FAILED   ", label, ": ", conditionMessage(e))
      message(msg)
      fail_log <<- c(fail_log, msg)
      if (nrow_out > n0) { rows[(n0 + 1L):nrow_out] <<- NULL; nrow_out <<- n0 }
      NULL
    }),
    warning = function(w) {
      message("WARNING  ", label, ": ", conditionMessage(w))
      invokeRestart("muffleWarning")
    })
}

# prediction intervals of a fit under the three conventions:
#   predict(res, pi.type = "t")      -> t on k - 1 df  (meta 8 default)            pi_*_k1
#   predict(res, pi.type = "riley")  -> t on k - 2 df  (Higgins/Riley), k >= 3     pi_*_k2
#   b +/- qnorm(0.975) * sqrt(se^2 + tau2)  (metafor's default for test = "z")      pi_*_z
emit_pis <- function(ctx, fit, res) {
  k <- res$k
  p1 <- predict(res, pi.type = "t")
  emit_list(ctx, fit, list(pi_lb_k1 = p1$pi.lb, pi_ub_k1 = p1$pi.ub))
  if (k >= 3) {
    p2 <- predict(res, pi.type = "riley")
    emit_list(ctx, fit, list(pi_lb_k2 = p2$pi.lb, pi_ub_k2 = p2$pi.ub))
  }
  h <- qnorm(0.975) * sqrt(res$se^2 + res$tau2)
  emit_list(ctx, fit, list(pi_lb_z = c(res$beta) - h, pi_ub_z = c(res$beta) + h))
}

emit_fit <- function(ctx, fit, res) {
  emit_list(ctx, fit, list(b = c(res$beta), se = res$se, ci_lb = res$ci.lb, ci_ub = res$ci.ub,
                           zval = res$zval, pval = res$pval, tau2 = res$tau2))
}

# ----------------------------------------------------------------------------------------------
# conventions on rma.uni, GLMM and Peters' test, per proportion data set
# ----------------------------------------------------------------------------------------------
analyse_props <- function(ctx, d) {
  xi <- d$events; ni <- d$total; k <- nrow(d)
  message("== ", ctx$dataset, " / ", ctx$outcome, " / ", ctx$subgroup, " (k = ", k, ")")
  if (k < 2) return(invisible())
  for (m in c("PFT", "PLO")) {
    e <- escalc(measure = m, xi = xi, ni = ni)
    for (meth in c("DL", "REML")) {
      tag <- paste0(m, "-", meth)
      # rma(yi, vi, method = meth)                      (Wald z)
      safely(ctx, tag, {
        r <- rma(yi = e$yi, vi = e$vi, method = meth)
        emit_fit(ctx, tag, r)
        emit_pis(ctx, tag, r)
        # I^2 and H^2 as meta's method.I2 = "Q": I2 = max(0, (Q - (k-1)) / Q), H2 = Q / (k - 1)
        emit_list(ctx, tag, list(i2_q = 100 * max(0, (r$QE - (k - 1)) / r$QE), h2_q = r$QE / (k - 1),
                                 i2 = r$I2, h2 = r$H2))
      })
      # rma(yi, vi, method = meth, test = "knha")       (Hartung-Knapp, no ad hoc rule)
      safely(ctx, paste0(tag, "-HKSJ"), {
        r <- rma(yi = e$yi, vi = e$vi, method = meth, test = "knha")
        emit_fit(ctx, paste0(tag, "-HKSJ"), r)
        emit_pis(ctx, paste0(tag, "-HKSJ"), r)
      })
      # rma(yi, vi, method = meth, test = "adhoc")      (Knapp & Hartung 2003: s2w = max(1, s2w),
      #                                                   meta's adhoc.hakn.ci = "se")
      safely(ctx, paste0(tag, "-HKSJ-SE"), {
        r <- rma(yi = e$yi, vi = e$vi, method = meth, test = "adhoc")
        hk <- rma(yi = e$yi, vi = e$vi, method = meth, test = "knha")
        emit_fit(ctx, paste0(tag, "-HKSJ-SE"), r)
        emit_pis(ctx, paste0(tag, "-HKSJ-SE"), r)
        # changed beyond rounding: with k = 2 and tau2 > 0 the HK factor is exactly 1 in theory
        emit(ctx, paste0(tag, "-HKSJ-SE"), "changed", as.numeric(r$se > hk$se * (1 + 1e-10)))
      })
      # IQWiG rule (meta's adhoc.hakn.ci = "ci"), no metafor option: the wider of
      #   rma(..., test = "knha") and rma(..., test = "z"), whose se, test and PI are then used:
      #   chosen <- if (hk$ci.ub - hk$ci.lb >= (cl$ci.ub - cl$ci.lb) * (1 - 1e-10)) hk else cl
      #   (a relative margin of 1e-10 so that rounding alone never flips the choice)
      safely(ctx, paste0(tag, "-HKSJ-CI"), {
        hk <- rma(yi = e$yi, vi = e$vi, method = meth, test = "knha")
        cl <- rma(yi = e$yi, vi = e$vi, method = meth, test = "z")
        chosen <- if (hk$ci.ub - hk$ci.lb >= (cl$ci.ub - cl$ci.lb) * (1 - 1e-10)) hk else cl
        emit_fit(ctx, paste0(tag, "-HKSJ-CI"), chosen)
        p1 <- predict(chosen, pi.type = "t")
        emit_list(ctx, paste0(tag, "-HKSJ-CI"), list(pi_lb_k1 = p1$pi.lb, pi_ub_k1 = p1$pi.ub,
                                                     changed = as.numeric(identical(chosen, cl))))
      })
    }
    # Peters-type tests: regtest(rma(yi, vi, method = "DL"), ni = ni, model = "lm",
    #                            predictor = "ninv" | "ni")
    if (k >= 3) {
      for (pred in c("ninv", "ni")) {
        fit <- paste0("REGTEST-", pred, "-", m)
        safely(ctx, fit, {
          r <- rma(yi = e$yi, vi = e$vi, method = "DL")
          rt <- regtest(r, ni = ni, model = "lm", predictor = pred)
          emit_list(ctx, fit, list(zval = rt$zval, pval = rt$pval, dfs = rt$dfs,
                                   est = if (is.null(rt$est)) NA else rt$est))
        })
      }
    }
  }

  # GLMM, random effects, Wald z:  g <- rma.glmm(measure = "PLO", xi = xi, ni = ni, method = "ML")
  safely(ctx, "GLMM-ML", {
    g <- rma.glmm(measure = "PLO", xi = xi, ni = ni, method = "ML")
    emit_fit(ctx, "GLMM-ML", g)
    emit_list(ctx, "GLMM-ML", list(i2 = g$I2, h2 = g$H2, q_wald = g$QE.Wld, q_wald_p = g$QEp.Wld,
                                   q_lrt = g$QE.LRT, q_lrt_p = g$QEp.LRT,
                                   loglik = as.numeric(logLik(g))))
    # predict(g, pi.type = "t" | "riley"); z: b +/- qnorm(0.975) * sqrt(se^2 + tau2)
    emit_pis(ctx, "GLMM-ML", g)
    # Population-averaged proportion (Lin & Chu 2020), at metafor's (mu, tau):
    #   pm(mu, tau) = integrate(function(z) plogis(mu + tau * z) * dnorm(z), -Inf, Inf)
    # CI by the delta method on the logit of pm, with the covariance of (tau, mu) from the
    # Hessian of lme4's own deviance (nAGQ = 7) at that point:
    #   dev <- glmer(cbind(xi, ni - xi) ~ 1 + (1 | study), family = binomial, nAGQ = 7,
    #                devFunOnly = TRUE);  V <- 2 * solve(numDeriv::hessian(dev, c(tau, mu)))
    #   se <- sqrt(grad' V grad), grad = numDeriv::grad(qlogis(pm)), CI = plogis(qlogis(pm) +/- 1.96 se)
    # At tau = 0 (boundary) only mu is free: V = 2 / d2dev/dmu2.
    mu <- c(g$beta); tau <- sqrt(g$tau2)
    pm <- function(th) integrate(function(z) plogis(th[2] + th[1] * z) * dnorm(z), -Inf, Inf,
                                 rel.tol = 1e-13, abs.tol = 0)$value
    lpm <- function(th) qlogis(pm(th))
    study <- factor(seq_len(k))
    dev <- glmer(cbind(xi, ni - xi) ~ 1 + (1 | study), family = binomial, nAGQ = 7,
                 devFunOnly = TRUE)
    if (tau > 1e-6) {
      V <- 2 * solve(hessian(dev, c(tau, mu)))
      gr <- grad(lpm, c(tau, mu))
    } else {
      V <- 2 / hessian(function(m) dev(c(0, m)), mu)
      gr <- grad(function(m) lpm(c(0, m)), mu)
    }
    se <- sqrt(c(t(gr) %*% V %*% gr))
    emit_list(ctx, "GLMM-ML-MARGINAL", list(est = pm(c(tau, mu)), logit_se = se,
                                            ci_lb = plogis(lpm(c(tau, mu)) - qnorm(0.975) * se),
                                            ci_ub = plogis(lpm(c(tau, mu)) + qnorm(0.975) * se)))
  })
  # GLMM with t tests: rma.glmm(measure = "PLO", xi = xi, ni = ni, method = "ML", test = "t")
  safely(ctx, "GLMM-ML-T", {
    g <- rma.glmm(measure = "PLO", xi = xi, ni = ni, method = "ML", test = "t")
    emit_fit(ctx, "GLMM-ML-T", g)
    emit_pis(ctx, "GLMM-ML-T", g)
  })
  # common-effect GLMM (logistic regression): rma.glmm(measure = "PLO", xi, ni, method = "EE")
  safely(ctx, "GLMM-CE", {
    g <- rma.glmm(measure = "PLO", xi = xi, ni = ni, method = "EE")
    emit_fit(ctx, "GLMM-CE", g)
    emit_list(ctx, "GLMM-CE", list(q_wald = g$QE.Wld, q_lrt = g$QE.LRT, q_lrt_p = g$QEp.LRT,
                                   loglik = as.numeric(logLik(g))))
  })
}

# ----------------------------------------------------------------------------------------------
# subgroup tests with a common tau^2
# ----------------------------------------------------------------------------------------------
subgroup_tests <- function(ctx, d, groups) {
  if (length(unique(groups)) < 2) return(invisible())
  grp <- factor(groups, levels = sort(unique(groups), method = "radix"))
  for (m in c("PFT", "PLO")) {
    e <- escalc(measure = m, xi = d$events, ni = d$total)
    for (meth in c("DL", "REML")) {
      # rma(yi, vi, mods = ~ grp, method = meth)   (meta: subgroup, tau.common = TRUE)
      fit <- paste0("SUBGROUP-COMMON-", m, "-", meth)
      safely(ctx, fit, {
        r <- rma(yi = e$yi, vi = e$vi, mods = ~ grp, data = data.frame(grp = grp), method = meth)
        emit_list(ctx, fit, list(qm = r$QM, qm_df = r$QMdf[1], qm_p = r$QMp, tau2 = r$tau2,
                                 qe = r$QE, qe_p = r$QEp))
      })
    }
  }
  # rma.glmm(measure = "PLO", xi, ni, mods = ~ grp, method = "ML", control = GLMM_CTRL)
  safely(ctx, "SUBGROUP-GLMM", {
    g <- metafor::rma.glmm(measure = "PLO", xi = d$events, ni = d$total, mods = ~ grp, method = "ML",
                           control = GLMM_CTRL)
    emit_list(ctx, "SUBGROUP-GLMM", list(qm = g$QM, qm_df = g$QMdf[1], qm_p = g$QMp, tau2 = g$tau2,
                                         q_lrt = g$QE.LRT, q_lrt_p = g$QEp.LRT))
    emit(ctx, "SUBGROUP-GLMM", "b", c(g$beta), rownames(g$beta))
    emit(ctx, "SUBGROUP-GLMM", "se", g$se, rownames(g$beta))
  })
}

# ----------------------------------------------------------------------------------------------
# meta-regression
# ----------------------------------------------------------------------------------------------
emit_metareg <- function(ctx, fit, r) {
  nm <- rownames(r$beta)
  emit(ctx, fit, "b", c(r$beta), nm); emit(ctx, fit, "se", r$se, nm)
  emit(ctx, fit, "zval", r$zval, nm); emit(ctx, fit, "pval", r$pval, nm)
  emit(ctx, fit, "ci_lb", r$ci.lb, nm); emit(ctx, fit, "ci_ub", r$ci.ub, nm)
  emit_list(ctx, fit, list(qm = r$QM, qm_df = r$QMdf[1], qm_p = r$QMp, tau2 = r$tau2,
                           i2 = r$I2, h2 = r$H2))
}
metareg <- function(ctx, yi, vi, mods, data) {
  for (meth in c("DL", "REML", "EE")) {
    for (test in c("z", "knha")) {
      fit <- paste0("METAREG-", meth, if (test == "knha") "-HKSJ" else "")
      # rma(yi, vi, mods = mods, data = data, method = meth, test = test)
      safely(ctx, fit, {
        r <- rma(yi = yi, vi = vi, mods = mods, data = data, method = meth, test = test)
        emit_metareg(ctx, fit, r)
        emit_list(ctx, fit, list(qe = r$QE, qe_df = r$k - r$p, qe_p = r$QEp,
                                 r2 = if (is.null(r$R2)) NA else r$R2))
        # tau^2 without moderators: rma(yi, vi, method = meth)$tau2
        emit(ctx, fit, "tau2_null", rma(yi = yi, vi = vi, method = meth)$tau2)
      })
    }
  }
}

# --- proportions -------------------------------------------------------------------------------
read_in <- function(f) utils::read.csv(file.path(in_dir, f), stringsAsFactors = FALSE)
miller <- read_in("miller1978.csv")
analyse_props(list(dataset = "miller1978", outcome = "orr", subgroup = "overall"), miller)
subgroup_tests(list(dataset = "miller1978", outcome = "orr", subgroup = "overall"), miller,
               ifelse(miller$study %in% c("miller1", "miller2"), "A", "B"))
pritz <- read_in("pritz1997.csv")
analyse_props(list(dataset = "pritz1997", outcome = "orr", subgroup = "overall"), pritz)
edge <- read_in("edge_cases.csv")
for (ds in unique(edge$dataset))
  analyse_props(list(dataset = ds, outcome = "orr", subgroup = "overall"),
                edge[edge$dataset == ds, c("study", "events", "total")])
sp <- read_in("sarcoma_proportions.csv")
for (oc in sort(unique(sp$outcome), method = "radix")) {
  d <- sp[sp$outcome == oc, , drop = FALSE]
  ctx <- list(dataset = "sarcoma", outcome = oc, subgroup = "overall")
  analyse_props(ctx, d)
  for (lv in sort(unique(d$subgroup), method = "radix"))
    analyse_props(list(dataset = "sarcoma", outcome = oc, subgroup = lv), d[d$subgroup == lv, ])
  subgroup_tests(ctx, d, d$subgroup)
}

# --- meta-regression data sets -----------------------------------------------------------------
# metadat::dat.debruin2009 (xi/ni, moderators scq numeric, ethnicity categorical, reference
# "caucasian"): logit and Freeman-Tukey proportions
deb <- dat.debruin2009
utils::write.csv(data.frame(study = seq_len(nrow(deb)), events = deb$xi, total = deb$ni, scq = deb$scq,
                            ethnicity = deb$ethnicity, patients = deb$patients),
                 file.path(in_dir, "debruin2009.csv"), row.names = FALSE, quote = FALSE)
for (m in c("PLO", "PFT")) {
  e <- escalc(measure = m, xi = xi, ni = ni, data = deb)
  metareg(list(dataset = "debruin2009", outcome = m, subgroup = "scq+ethnicity"), e$yi, e$vi,
          ~ scq + ethnicity, e)
  metareg(list(dataset = "debruin2009", outcome = m, subgroup = "scq"), e$yi, e$vi, ~ scq, e)
}
# metadat::dat.bcg: log risk ratios on absolute latitude (numeric) and allocation (3 levels,
# reference "alternate")
bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
utils::write.csv(data.frame(study = bcg$trial, yi = sprintf("%.17g", bcg$yi), vi = sprintf("%.17g", bcg$vi),
                            ablat = bcg$ablat, alloc = bcg$alloc),
                 file.path(in_dir, "bcg.csv"), row.names = FALSE, quote = FALSE)
metareg(list(dataset = "bcg", outcome = "RR", subgroup = "ablat+alloc"), bcg$yi, bcg$vi, ~ ablat + alloc, bcg)

# GLMM with moderators:
#   rma.glmm(measure = "PLO", xi, ni, mods = ~ scq + ethnicity, data = deb, method = "ML"[, test = "t"],
#            control = GLMM_CTRL)
for (spec in list(list(fit = "METAREG-GLMM", test = "z"), list(fit = "METAREG-GLMM-T", test = "t"))) {
  for (mods in list(list(f = ~ scq + ethnicity, tag = "scq+ethnicity"), list(f = ~ scq, tag = "scq"))) {
    ctx <- list(dataset = "debruin2009", outcome = "PLO", subgroup = mods$tag)
    safely(ctx, spec$fit, {
      g <- metafor::rma.glmm(measure = "PLO", xi = xi, ni = ni, mods = mods$f, data = deb, method = "ML",
                             test = spec$test, control = GLMM_CTRL)
      emit_metareg(ctx, spec$fit, g)
      emit_list(ctx, spec$fit, list(q_lrt = g$QE.LRT, q_lrt_p = g$QEp.LRT, q_wald = g$QE.Wld,
                                    loglik = as.numeric(logLik(g))))
    })
  }
}

# ----------------------------------------------------------------------------------------------
out <- do.call(rbind, rows)
lines <- c("dataset,outcome,subgroup,fit,quantity,study,value",
           do.call(paste, c(lapply(out, function(x) {
             x <- as.character(x); need <- grepl('[,"\n]', x)
             x[need] <- paste0('"', gsub('"', '""', x[need]), '"'); x }), sep = ",")))
con <- file(file.path(ref_dir, "metafor_engine_values.csv"), open = "wb")
writeLines(lines, con, sep = "\n")
close(con)
message("\nwrote ", nrow(out), " rows; failed fits: ", length(fail_log))
for (m in fail_log) message("  ", m)
