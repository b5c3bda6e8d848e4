package io.chatstream.flink;

import java.io.IOException;
import java.lang.reflect.Method;
import java.net.ConnectException;
import java.net.SocketTimeoutException;
import java.net.UnknownHostException;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.metrics.Counter;
import org.apache.flink.table.data.RowData;
import org.apache.flink.util.Collector;
import org.apache.flink.util.InstantiationUtil;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Decodes with the strict decoder; a record that cannot be (not Confluent wire format, a schema
 * id the registry does not have, an Avro body that does not decode) is dropped, counted in the
 * metric {@code chatstreamCorruptRecordsSkipped} and logged. A registry that cannot be reached or
 * answers with a server error is not the record's fault: that exception goes on and the job
 * restarts from its checkpoint, as for any outage.
 */
final class LenientDeserializationSchema implements DeserializationSchema<RowData> {

    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(LenientDeserializationSchema.class);

    private DeserializationSchema<RowData> strict;
    private transient InitializationContext context;
    private transient Counter skipped;
    private transient long skippedCount;

    LenientDeserializationSchema(DeserializationSchema<RowData> strict) {
        this.strict = strict;
    }

    @Override
    public void open(InitializationContext context) throws Exception {
        this.context = context;
        strict.open(context);
        skipped = context.getMetricGroup().counter("chatstreamCorruptRecordsSkipped");
    }

    @Override
    public RowData deserialize(byte[] message) throws IOException {
        if (message == null) {
            return null;
        }
        if (message.length < 5 || message[0] != 0) {
            return skip(message, "not Confluent wire format (no magic byte 0 and schema id)");
        }
        try {
            return strict.deserialize(message);
        } catch (IOException | RuntimeException e) {
            if (isOutage(e)) {
                throw e;
            }
            renew();
            return skip(message, e.toString());
        }
    }

    @Override
    public void deserialize(byte[] message, Collector<RowData> out) throws IOException {
        RowData row = deserialize(message);
        if (row != null) {
            out.collect(row);
        }
    }

    /**
     * A fresh strict decoder: Avro's buffered decoder, reused from record to record, keeps what it
     * read ahead of a body that failed, and would misread every record after it.
     */
    private void renew() throws IOException {
        try {
            DeserializationSchema<RowData> fresh = InstantiationUtil.clone(strict, getClass().getClassLoader());
            fresh.open(context);
            strict = fresh;
        } catch (Exception e) {
            throw new IOException("could not renew the Avro decoder after a corrupt record", e);
        }
    }

    private RowData skip(byte[] message, String why) {
        skippedCount++;
        if (skipped != null) {
            skipped.inc();
        }
        if (skippedCount <= 10 || skippedCount % 1000 == 0) {
            LOG.warn("skipped a corrupt record of {} bytes ({} so far): {}", message.length, skippedCount, why);
        }
        return null;
    }

    /** The registry unreachable, timing out or failing on its side: retry, never skip. */
    static boolean isOutage(Throwable error) {
        for (Throwable t = error; t != null; t = t.getCause()) {
            if (t instanceof ConnectException || t instanceof SocketTimeoutException || t instanceof UnknownHostException) {
                return true;
            }
            if (t.getClass().getSimpleName().equals("RestClientException")) {
                Integer status = restStatus(t);
                return status == null || status != 404; // 404: no such schema id, the record's fault
            }
        }
        return false;
    }

    private static Integer restStatus(Throwable restError) {
        try {
            Method getStatus = restError.getClass().getMethod("getStatus");
            return (Integer) getStatus.invoke(restError);
        } catch (ReflectiveOperationException | ClassCastException e) {
            return null;
        }
    }

    @Override
    public boolean isEndOfStream(RowData nextElement) {
        return false;
    }

    @Override
    public TypeInformation<RowData> getProducedType() {
        return strict.getProducedType();
    }
}
